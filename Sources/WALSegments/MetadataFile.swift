import Crypto
import Glibc
import WALFormat
import WALIO
import WALEncryption

/// The WAL's durable metadata: a small blob (at most ``maxSize`` bytes) that the embedding
/// system replaces atomically — a consensus layer's term, vote and commit index — kept in
/// `wal-metadata` beside the segments (ours; the seed has none, and its readers ignore the file).
///
/// Two slots of 8 KiB, written alternately, each with a generation number and a CRC-32C (as
/// TigerBeetle keeps copies of its superblock): a write goes to the slot that does not hold the
/// newest generation and is fdatasynced before ``write(_:)`` returns, so a torn write can only
/// damage that slot, and a read takes the valid slot with the highest generation. The value read
/// after a crash is therefore never torn and never older than the last write that returned.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | magic `WALM` |
/// | 4 | 2 | version = 1 |
/// | 6 | 1 | flags: 1 = encrypted |
/// | 7 | 1 | key id (encrypted) |
/// | 8 | 8 | generation, little-endian |
/// | 16 | 4 | stored length, little-endian |
/// | 20 | 4 | CRC-32C of bytes 0..<20, 24..<52 and the stored bytes |
/// | 24 | 16 | encrypted: HKDF salt |
/// | 40 | 12 | encrypted: GCM nonce |
/// | 52 | … | the stored bytes: the blob, or ciphertext ‖ 16-byte tag (header authenticated) |
///
/// Not thread-safe: ``SegmentedWAL`` serialises writes.
package final class MetadataFile {
    package static let name = "wal-metadata"
    /// The largest blob.
    package static let maxSize = 4096
    static let slotSize = 8192
    static let headerSize = 52
    static let magic: [UInt8] = Array("WALM".utf8)
    static let keyInfo = Array("swift-wal metadata key".utf8)

    let path: String
    private let keyRing: KeyRing?
    /// The newest valid generation on disk, and the slot holding it.
    private var newest: (generation: UInt64, slot: Int)?
    private let buffer = AlignedBuffer(capacity: slotSize)

    /// Opens the metadata of `directory` (without creating the file; a temporary file left by
    /// a crash during the first write is ignored, and replaced by the next first write).
    package init(directory: String, keyRing: KeyRing?) throws(WALError) {
        path = FilePaths.join(directory, Self.name)
        self.keyRing = keyRing
        newest = try Self.read(path: path, keyRing: keyRing).map { ($0.generation, $0.slot) }
    }

    /// The newest blob written, or nil when none was ever written.
    /// - Throws: ``WALError/corruption(segment:offset:lsn:reason:)`` when the file exists but
    ///   neither slot is valid, ``WALError/unknownKey(id:segment:)`` or
    ///   ``WALError/authenticationFailed(segment:lsn:)`` for encrypted metadata.
    package func read() throws(WALError) -> [UInt8]? {
        try Self.read(path: path, keyRing: keyRing)?.bytes
    }

    /// Replaces the blob; durable when this returns.
    ///
    /// The first write creates the file whole — both slots, under a temporary name, fsynced,
    /// renamed into place, the directory fsynced — so a crash never leaves a file without a
    /// valid slot; later writes go in place, into the slot not holding the newest generation.
    package func write(_ bytes: [UInt8]) throws(WALError) {
        precondition(bytes.count <= Self.maxSize)
        let generation = (newest?.generation ?? 0) + 1
        let slot = newest.map { 1 - $0.slot } ?? 0
        memset(buffer.base, 0, Self.slotSize)
        try encode(bytes, generation: generation, into: buffer)
        let image = UnsafeRawBufferPointer(buffer.slice(0..<Self.slotSize))
        if try Syscall.fileType(path) == nil {
            let temporary = path + ".tmp"
            let fd = try Syscall.open(temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
            defer { Syscall.close(fd) }
            try Syscall.pwriteAll(fd, image, offset: 0, path: temporary)
            try Syscall.ftruncate(fd, length: Int64(2 * Self.slotSize), path: temporary)
            try Syscall.fsync(fd, path: temporary)
            try Syscall.rename(temporary, path)
            try Syscall.fsyncDirectory(FilePaths.parent(of: path))
        } else {
            let fd = try Syscall.open(path, flags: O_RDWR)
            defer { Syscall.close(fd) }
            try Syscall.pwriteAll(fd, image, offset: Int64(slot * Self.slotSize), path: path)
            try Syscall.fdatasync(fd, path: path)
        }
        newest = (generation, slot)
    }

    private func encode(_ bytes: [UInt8], generation: UInt64, into buffer: AlignedBuffer) throws(WALError) {
        let slot = buffer.bytes
        for (index, byte) in Self.magic.enumerated() { slot[index] = byte }
        slot.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 4, as: UInt16.self)
        slot.storeBytes(of: generation.littleEndian, toByteOffset: 8, as: UInt64.self)
        var stored = bytes
        if let key = keyRing?.current {
            slot[6] = 1
            slot[7] = key.id
            var generator = SystemRandomNumberGenerator()
            for index in 24..<52 { slot[index] = UInt8.random(in: 0...255, using: &generator) }
            slot.storeBytes(of: UInt32(bytes.count + 16).littleEndian, toByteOffset: 16, as: UInt32.self)
            let aad = Array(UnsafeRawBufferPointer(rebasing: slot[0..<20]))
            do {
                let sealed = try AES.GCM.seal(bytes, using: Self.key(key, salt: Array(slot[24..<40])),
                                              nonce: try AES.GCM.Nonce(data: Array(slot[40..<52])), authenticating: aad)
                stored = Array(sealed.ciphertext) + Array(sealed.tag)
            } catch {
                throw WALError.invalidKey("AES-GCM refused to encrypt the metadata: \(error)")
            }
        } else {
            slot.storeBytes(of: UInt32(bytes.count).littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        for (index, byte) in stored.enumerated() { slot[Self.headerSize + index] = byte }
        let crc = Self.checksum(UnsafeRawBufferPointer(slot), storedCount: stored.count)
        slot.storeBytes(of: crc.littleEndian, toByteOffset: 20, as: UInt32.self)
    }

    /// CRC-32C of a slot: bytes 0..<20, 24..<52 (salt and nonce) and the stored bytes.
    private static func checksum(_ slot: UnsafeRawBufferPointer, storedCount: Int) -> UInt32 {
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: slot[0..<20]))
        crc.update(UnsafeRawBufferPointer(rebasing: slot[24..<headerSize]))
        crc.update(UnsafeRawBufferPointer(rebasing: slot[headerSize..<(headerSize + storedCount)]))
        return crc.value
    }

    private static func key(_ key: EncryptionKey, salt: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key.key, salt: salt, info: keyInfo, outputByteCount: 32)
    }

    /// The valid slot with the highest generation, decoded; nil when the file does not exist.
    private static func read(path: String, keyRing: KeyRing?) throws(WALError) -> (generation: UInt64, slot: Int, bytes: [UInt8])? {
        guard try Syscall.fileType(path) != nil else { return nil }
        let file = try SegmentFile.openForReading(path: path)
        defer { file.close() }
        let buffer = AlignedBuffer(capacity: 2 * slotSize)
        let count = try file.read(into: buffer.bytes, at: 0)
        var best: (generation: UInt64, slot: Int, stored: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer)?
        for slot in 0..<2 where count >= (slot + 1) * slotSize {
            let bytes = UnsafeRawBufferPointer(buffer.slice((slot * slotSize)..<((slot + 1) * slotSize)))
            guard Array(bytes[0..<4]) == magic, bytes.load(fromByteOffset: 4, as: UInt16.self) == UInt16(1).littleEndian else { continue }
            let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
            guard length <= maxSize + 16 else { continue }
            let stored = UnsafeRawBufferPointer(rebasing: bytes[headerSize..<(headerSize + length)])
            guard checksum(bytes, storedCount: length) == UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt32.self)) else {
                continue
            }
            let generation = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if generation > (best?.generation ?? 0) { best = (generation, slot, stored, bytes) }
        }
        guard let best else {
            throw WALError.corruption(segment: name, offset: 0, lsn: 0, reason: "neither metadata slot is valid")
        }
        guard best.header[6] & 1 != 0 else { return (best.generation, best.slot, Array(best.stored)) }
        let keyID = best.header[7]
        guard let key = keyRing?.key(id: keyID) else { throw WALError.unknownKey(id: keyID, segment: name) }
        let header = best.header
        guard best.stored.count >= 16,
              let nonce = try? AES.GCM.Nonce(data: Array(header[40..<52])),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: best.stored.dropLast(16), tag: best.stored.suffix(16)),
              let plain = try? AES.GCM.open(box, using: Self.key(key, salt: Array(header[24..<40])),
                                            authenticating: Array(header[0..<20])) else {
            throw WALError.authenticationFailed(segment: name, lsn: 0)
        }
        return (best.generation, best.slot, Array(plain))
    }
}
