// CISAL: ISA-L's hardware-accelerated CRC32C for Swift.
//
// crc32_iscsi() is the Castagnoli polynomial without the final inversion:
// the standard CRC-32C of a buffer is ~crc32_iscsi(buf, len, 0xFFFFFFFF),
// and passing a previous (non-inverted) result as init continues the CRC.
#ifndef CISAL_SHIM_H
#define CISAL_SHIM_H

#if defined(__has_include)
#if !__has_include(<isa-l/crc.h>)
#error "isa-l/crc.h not found: install libisal-dev (apt-get install libisal-dev) or run scripts/install-deps"
#endif
#endif

#include <isa-l/crc.h>

#endif
