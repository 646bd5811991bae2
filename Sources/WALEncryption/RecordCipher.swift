import Crypto
import WALFormat

/// The seed's record encryption, exactly: AES-256-GCM with
/// - nonce = 4-byte epoch ‖ LSN as 8 bytes little-endian,
/// - additional data = the 30 header bytes with the encrypted flag clear, payload_len = 0 and
///   crc32c = 0,
/// - stored payload = ciphertext ‖ 16-byte tag (payload_len counts both), encrypted flag set,
///   CRC over the stored payload.
///
/// Segments with a version 2 preamble (all we write) encrypt under a key of their own:
/// HKDF-SHA256 of the ring's key with the preamble's random salt (see ``SegmentPreamble``).
package struct RecordCipher: Sendable {
    package static let tagSize = 16
    static let segmentKeyInfo = Array("swift-wal segment key".utf8)

    let key: SymmetricKey
    let epoch: [UInt8]

    /// The seed's scheme: records under `key` itself, nonces from `epoch`.
    package init(key: EncryptionKey, epoch: [UInt8]) {
        self.key = key.key
        self.epoch = epoch
    }

    /// The cipher of a segment with `preamble` (whose key id names `key`).
    package init(key: EncryptionKey, preamble: SegmentPreamble) {
        if let salt = preamble.salt {
            self.key = HKDF<SHA256>.deriveKey(inputKeyMaterial: key.key, salt: salt, info: Self.segmentKeyInfo, outputByteCount: 32)
        } else {
            self.key = key.key
        }
        self.epoch = preamble.epoch
    }

    /// Encrypts `payload` for the record `header` describes (its type without the encrypted
    /// flag); the record stores the ciphertext and then the tag.
    package func seal(_ payload: UnsafeRawBufferPointer, header: RecordHeader) throws(WALError) -> SealedPayload {
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(payload, using: key, nonce: nonce(lsn: header.lsn),
                                   authenticating: Self.additionalData(header))
        } catch {
            throw WALError.invalidKey("AES-GCM refused to encrypt: \(error)")
        }
        return SealedPayload(ciphertext: Array(box.ciphertext), tag: Array(box.tag))
    }

    /// Decrypts a stored payload; nil when authentication fails (wrong key or epoch, or any
    /// bit of header, ciphertext or tag changed).
    package func open(_ stored: UnsafeRawBufferPointer, header: RecordHeader) -> [UInt8]? {
        guard stored.count >= Self.tagSize else { return nil }
        let split = stored.count - Self.tagSize
        guard let box = try? AES.GCM.SealedBox(nonce: nonce(lsn: header.lsn),
                                               ciphertext: UnsafeRawBufferPointer(rebasing: stored[..<split]),
                                               tag: UnsafeRawBufferPointer(rebasing: stored[split...])),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Self.additionalData(header)) else {
            return nil
        }
        return Array(plain)
    }

    private func nonce(lsn: LSN) -> AES.GCM.Nonce {
        var bytes = epoch
        withUnsafeBytes(of: lsn.littleEndian) { bytes.append(contentsOf: $0) }
        return try! AES.GCM.Nonce(data: bytes)
    }

    /// The header as the seed authenticates it.
    static func additionalData(_ header: RecordHeader) -> [UInt8] {
        var plain = header
        plain.storedType &= ~RecordType.encryptedFlag
        plain.payloadLength = 0
        plain.crc = 0
        var bytes = [UInt8](repeating: 0, count: RecordHeader.size)
        bytes.withUnsafeMutableBytes { plain.encode(into: $0) }
        return bytes
    }
}

/// A sealed record payload, as it is stored: the ciphertext, then the tag.
package struct SealedPayload: Sendable {
    package let ciphertext: [UInt8]
    package let tag: [UInt8]
    /// Bytes stored.
    package var count: Int { ciphertext.count + tag.count }
}
