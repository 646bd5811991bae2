import WALFormat
import WALEncryption
import WALSegments

/// How the records of one segment decrypt, for every reader: the segment's cipher from its
/// preamble (or the seed's epoch), or why there is none.
struct SegmentDecryption {
    private let keyRing: KeyRing?
    private let requirePlaintext: Bool
    private let cipher: Result<RecordCipher, WALError>?

    init(keyRing: KeyRing?, requirePlaintext: Bool, preamble: SegmentPreamble?, segment: String) {
        self.keyRing = keyRing
        self.requirePlaintext = requirePlaintext
        guard let keyRing else { cipher = nil; return }
        if let preamble {
            cipher = keyRing.key(id: preamble.keyID).map { .success(RecordCipher(key: $0, preamble: preamble)) }
                ?? .failure(.unknownKey(id: preamble.keyID, segment: segment))
        } else if let epoch = keyRing.seedEpoch {
            cipher = .success(RecordCipher(key: keyRing.current, epoch: epoch))
        } else {
            cipher = nil
        }
    }

    /// An encrypted record's plaintext, or nil — return it as stored — when no key ring is
    /// configured (unless plaintext is required).
    func plaintext(of stored: UnsafeRawBufferPointer, header: RecordHeader, segment: String) throws(WALError) -> [UInt8]? {
        guard keyRing != nil else {
            if requirePlaintext { throw WALError.encryptedRecordWithoutKey(segment: segment, lsn: header.lsn) }
            return nil  // returned as stored
        }
        guard let cipher else {
            // Encrypted record in a segment without preamble and no seed epoch to decrypt it with.
            throw WALError.authenticationFailed(segment: segment, lsn: header.lsn)
        }
        guard let plain = try cipher.get().open(stored, header: header) else {
            throw WALError.authenticationFailed(segment: segment, lsn: header.lsn)
        }
        return plain
    }
}
