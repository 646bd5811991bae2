// CLiburing: liburing for Swift, plus the Linux constants that Swift cannot import.
//
// Swift's Glibc module is not built with _GNU_SOURCE, so O_DIRECT and the
// fallocate(2) flags are invisible to it, and liburing's flag macros
// (IOSQE_IO_LINK, IORING_FSYNC_DATASYNC) are not imported as constants either.
// Each of those becomes a `CLiburing_`-prefixed constant here, and every
// constant says why it exists. liburing's own static inline functions
// (io_uring_get_sqe, io_uring_prep_write, ...) are called from Swift directly.
//
// Why this header does NOT define _GNU_SOURCE: a clang module built with it
// declares glibc's structs differently (fd_set's `fds_bits` instead of
// `__fds_bits`), and Swift then refuses to import both this module and Glibc.
// swift-nio meets the same wall (see CNIOLinux). So the GNU-only names are
// reached without it: O_DIRECT through glibc's always-defined __O_DIRECT,
// fallocate(2) through its prototype below (the symbol is in every glibc).
#ifndef CLIBURING_SHIM_H
#define CLIBURING_SHIM_H

#ifdef _GNU_SOURCE
#error "CLiburing must be imported without _GNU_SOURCE; see the comment above"
#endif

#if defined(__has_include)
#if !__has_include(<liburing.h>)
#error "liburing.h not found: install liburing-dev (apt-get install liburing-dev) or run scripts/install-deps"
#endif
#endif

#include <fcntl.h>
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/file.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <poll.h>

/// open(2) flag: bypass the page cache. Needs _GNU_SOURCE, which Swift's Glibc lacks.
static const int CLiburing_O_DIRECT = __O_DIRECT;
/// open(2) flag: sync only data on each write (not used by default; exposed for completeness).
static const int CLiburing_O_DSYNC = O_DSYNC;

/// pthread_setname_np(3), declared by glibc only under _GNU_SOURCE: names the flusher thread.
extern int pthread_setname_np(pthread_t thread, const char *name);
static inline int CLiburing_pthread_setname(pthread_t thread, const char *name) {
    return pthread_setname_np(thread, name);
}
/// gettid(2): the kernel's id of the calling thread (glibc declares gettid only under _GNU_SOURCE).
static inline pid_t CLiburing_gettid(void) {
    return (pid_t)syscall(SYS_gettid);
}
/// fallocate(2), declared by glibc only under _GNU_SOURCE.
extern int fallocate(int fd, int mode, off_t offset, off_t len);
/// fallocate(2) mode: allocate without changing the file size.
static const int CLiburing_FALLOC_FL_KEEP_SIZE = FALLOC_FL_KEEP_SIZE;
/// fallocate(2) mode: zero a range (written as unwritten extents where supported).
static const int CLiburing_FALLOC_FL_ZERO_RANGE = FALLOC_FL_ZERO_RANGE;
/// fallocate(2) mode: deallocate a range (always combined with KEEP_SIZE).
static const int CLiburing_FALLOC_FL_PUNCH_HOLE = FALLOC_FL_PUNCH_HOLE;

/// SQE flag: the next SQE starts only after this one succeeds; a failure cancels it (-ECANCELED).
static const uint8_t CLiburing_IOSQE_IO_LINK = IOSQE_IO_LINK;
/// SQE flag: the fd is an index into the registered file table.
static const uint8_t CLiburing_IOSQE_FIXED_FILE = IOSQE_FIXED_FILE;
/// Per-write flag (pwritev2, io_uring rw_flags): complete the write only once it is durable, as
/// O_DSYNC does. linux/fs.h spells it with a sparse annotation Swift cannot import.
static const int CLiburing_RWF_DSYNC = 0x00000002;
/// fsync SQE flag: fdatasync semantics rather than fsync.
static const uint32_t CLiburing_IORING_FSYNC_DATASYNC = IORING_FSYNC_DATASYNC;

/// Ring setup flags; 0 when the installed headers predate them, so the caller can skip them.
#ifdef IORING_SETUP_SINGLE_ISSUER
static const uint32_t CLiburing_IORING_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
#else
static const uint32_t CLiburing_IORING_SETUP_SINGLE_ISSUER = 0;
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
static const uint32_t CLiburing_IORING_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
#else
static const uint32_t CLiburing_IORING_SETUP_COOP_TASKRUN = 0;
#endif

/// Opcodes the probe checks before the engine trusts a ring (enum values, imported as
/// constants so Swift does not depend on how the enum is imported).
static const int CLiburing_IORING_OP_WRITE = IORING_OP_WRITE;
static const int CLiburing_IORING_OP_WRITE_FIXED = IORING_OP_WRITE_FIXED;
static const int CLiburing_IORING_OP_FSYNC = IORING_OP_FSYNC;
static const int CLiburing_IORING_OP_FALLOCATE = IORING_OP_FALLOCATE;
static const int CLiburing_IORING_OP_READ = IORING_OP_READ;
/// The pipelined io_uring writer's doorbell: a poll on an eventfd wakes the thread that waits for
/// completions when new work arrives (IORING_OP_POLL_ADD, eventfd(2) with these flags).
static const int CLiburing_IORING_OP_POLL_ADD = IORING_OP_POLL_ADD;
static const int CLiburing_EFD_NONBLOCK = EFD_NONBLOCK;
static const int CLiburing_EFD_CLOEXEC = EFD_CLOEXEC;
static const unsigned CLiburing_POLLIN = POLLIN;
static inline int CLiburing_eventfd(unsigned initval, int flags) { return eventfd(initval, flags); }

/// stat(2), which Swift cannot name as a function where the `struct stat` type shadows it.
static inline int CLiburing_stat(const char *path, struct stat *out) {
    return stat(path, out);
}

/// lstat(2), for the same reason as stat.
static inline int CLiburing_lstat(const char *path, struct stat *out) {
    return lstat(path, out);
}

/// statvfs(2), for the same reason as stat.
static inline int CLiburing_statvfs(const char *path, struct statvfs *out) {
    return statvfs(path, out);
}

/// flock(2), for the same reason (`struct flock` shadows it).
static inline int CLiburing_flock(int fd, int operation) {
    return flock(fd, operation);
}

/// fallocate(2) is declared only under _GNU_SOURCE; this wrapper makes it callable from Swift.
static inline int CLiburing_fallocate(int fd, int mode, off_t offset, off_t len) {
    return fallocate(fd, mode, offset, len);
}

/// Reads errno right after a call, without anything running in between.
static inline int CLiburing_errno(void) { return errno; }

#endif
