import WALFormat
import WALEncryption

/// How one record is stored: its header, with the CRC-32C over the header and the stored
/// payload, and the stored payload — the plaintext, or, in an encrypted segment, the AES-GCM
/// ciphertext followed by the tag (``RecordCipher``). Pure: it returns the pieces, and the
/// segment writer copies them into its ring.
struct RecordFraming {
    /// Encrypts every record, when the segment is encrypted.
    let cipher: RecordCipher?

    /// A framed record: the header, and the sealed payload when encrypted (else the caller's
    /// plaintext is stored as it is).
    struct Framed {
        var header: RecordHeader
        var sealed: SealedPayload?
    }

    /// Bytes a record with a payload of `count` bytes takes (header, payload, and the GCM tag
    /// when the segment is encrypted).
    func recordSize(payloadCount count: Int) -> Int {
        RecordHeader.size + count + (cipher == nil ? 0 : RecordCipher.tagSize)
    }

    /// Frames a record. The caller checked the plaintext length against the format's limit.
    /// - Throws: ``WALError/payloadTooLarge(size:limit:)`` when the tag would not fit.
    func frame(storedType: UInt16, lsn: LSN, tenant: UInt32, vshard: UInt16,
               payload: UnsafeRawBufferPointer) throws(WALError) -> Framed {
        var header = RecordHeader(storedType: storedType, lsn: lsn, tenant: tenant, vshard: vshard,
                                  payloadLength: UInt32(payload.count))
        guard let cipher else {
            header.crc = header.computeChecksum(payload: payload)
            return Framed(header: header, sealed: nil)
        }
        let limit = RecordHeader.maxPayloadLength - RecordCipher.tagSize
        guard payload.count <= limit else { throw WALError.payloadTooLarge(size: payload.count, limit: limit) }
        header.storedType &= ~RecordType.encryptedFlag
        let sealed = try cipher.seal(payload, header: header)
        header.storedType |= RecordType.encryptedFlag
        header.payloadLength = UInt32(sealed.count)
        header.crc = sealed.ciphertext.withUnsafeBytes { ciphertext in
            sealed.tag.withUnsafeBytes { tag in header.computeChecksum(payload: ciphertext, tag) }
        }
        return Framed(header: header, sealed: sealed)
    }
}
