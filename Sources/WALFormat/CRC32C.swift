import CISAL

/// CRC-32C (Castagnoli), computed by ISA-L's `crc32_iscsi` (SSE4.2/PCLMUL on x86).
///
/// `crc32_iscsi` omits the final inversion, so a running value is kept un-inverted
/// and ``value`` inverts it: the standard CRC-32C of `b` is `~crc32_iscsi(b, n, 0xFFFFFFFF)`.
package struct CRC32C {
    private var state: UInt32 = 0xFFFF_FFFF

    package init() {}

    /// Continues the checksum over `bytes`.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        // ISA-L takes an `int` length; records are at most 64 MiB + 26 bytes, far below Int32.max.
        precondition(bytes.count <= Int(Int32.max))
        state = crc32_iscsi(UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self)),
                            Int32(bytes.count), state)
    }

    /// The standard CRC-32C of everything passed to ``update(_:)``.
    package var value: UInt32 { ~state }

    /// The CRC-32C of one buffer.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }
}
