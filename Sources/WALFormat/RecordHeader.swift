/// The 30-byte record header of the seed's format version 2, little-endian.
///
/// | offset | size | field          |
/// |-------:|-----:|----------------|
/// | 0      | 4    | magic 0x53594E57 |
/// | 4      | 2    | format version (2) |
/// | 6      | 2    | record type (bit 15 required, bit 14 encrypted) |
/// | 8      | 8    | LSN            |
/// | 16     | 4    | tenant id      |
/// | 20     | 2    | vshard id      |
/// | 22     | 4    | payload length |
/// | 26     | 4    | CRC-32C over bytes 0..<26 then the stored payload |
package struct RecordHeader: Equatable, Sendable {
    package static let size = 30
    /// Bytes covered by the CRC before the payload.
    static let checksummedPrefix = 26
    static let magic: UInt32 = 0x5359_4E57
    package static let formatVersion: UInt16 = 2
    /// The largest payload a record may carry (the seed's limit).
    package static let maxPayloadLength = 64 * 1024 * 1024

    /// The stored type value, flags included.
    package var storedType: UInt16
    package var lsn: UInt64
    package var tenant: UInt32
    package var vshard: UInt16
    package var payloadLength: UInt32
    package var crc: UInt32
    package var version: UInt16 = formatVersion

    /// Writes the header into the first 30 bytes of `out`.
    package func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        out.storeBytes(of: version.littleEndian, toByteOffset: 4, as: UInt16.self)
        out.storeBytes(of: storedType.littleEndian, toByteOffset: 6, as: UInt16.self)
        out.storeBytes(of: lsn.littleEndian, toByteOffset: 8, as: UInt64.self)
        out.storeBytes(of: tenant.littleEndian, toByteOffset: 16, as: UInt32.self)
        out.storeBytes(of: vshard.littleEndian, toByteOffset: 20, as: UInt16.self)
        out.storeBytes(of: payloadLength.littleEndian, toByteOffset: 22, as: UInt32.self)
        out.storeBytes(of: crc.littleEndian, toByteOffset: 26, as: UInt32.self)
    }

    /// Reads the fields of a header from 30 bytes, without judging them.
    /// Returns nil when the magic is wrong.
    package init?(decoding bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= Self.size)
        guard UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == Self.magic else {
            return nil
        }
        version = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        storedType = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        lsn = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        tenant = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        vshard = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt16.self))
        payloadLength = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 22, as: UInt32.self))
        crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 26, as: UInt32.self))
    }

    package init(storedType: UInt16, lsn: UInt64, tenant: UInt32, vshard: UInt16, payloadLength: UInt32, crc: UInt32 = 0) {
        self.storedType = storedType
        self.lsn = lsn
        self.tenant = tenant
        self.vshard = vshard
        self.payloadLength = payloadLength
        self.crc = crc
    }

    /// Total bytes of the record on disk.
    package var recordLength: Int { Self.size + Int(payloadLength) }

    /// Computes the CRC of this header (bytes 0..<26, with the fields as set) followed by `payload`.
    package func computeChecksum(payload: UnsafeRawBufferPointer) -> UInt32 {
        computeChecksum(payload: payload, UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// The CRC of a payload stored in two pieces (an encrypted record's ciphertext and tag).
    package func computeChecksum(payload first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> UInt32 {
        withUnsafeTemporaryAllocation(byteCount: Self.size, alignment: 8) { scratch in
            self.encode(into: scratch)
            var crc = CRC32C()
            crc.update(UnsafeRawBufferPointer(rebasing: scratch[0..<Self.checksummedPrefix]))
            crc.update(first)
            if !second.isEmpty { crc.update(second) }
            return crc.value
        }
    }
}
