/// A log sequence number: 1 for the first record of a log, +1 per record.
public typealias LSN = UInt64

/// The LSNs a record can have: 1 through 2⁶³ − 2 (``last``).
///
/// The bound keeps every `lsn + 1` (the LSN after a record, a log's next LSN) from overflowing
/// and representable as `Int64` (metrics, offsets). The API refuses an LSN outside it with
/// ``WALError/invalidArgument(_:)``, an append past ``last`` likewise; a segment name or a cut
/// intent on disk outside it is ``WALError/corruption(segment:offset:lsn:reason:)`` naming the
/// file.
public enum LSNDomain {
    /// The lowest LSN a record can have.
    public static let first: LSN = 1
    /// The highest LSN a record can have: 2⁶³ − 2.
    public static let last: LSN = LSN(Int64.max) - 1

    /// Whether a record can have `lsn`.
    @inlinable
    public static func contains(_ lsn: LSN) -> Bool { lsn >= first && lsn <= last }
}

/// A record read back from the log.
public struct WALRecord: Sendable, Equatable {
    /// The record's log sequence number.
    public var lsn: LSN
    /// The record's type, without the encrypted bit.
    public var type: RecordType
    /// The tenant the record belongs to.
    public var tenant: UInt32
    /// The virtual shard the record belongs to.
    public var vshard: UInt16
    /// The payload: the plaintext when the record was stored encrypted and a key ring
    /// decrypted it (replay, point reads and tailing with ``KeyRing``), otherwise the bytes as
    /// stored — for an encrypted record read without a key, the ciphertext followed by the
    /// 16-byte tag.
    public var payload: [UInt8]
    /// Whether the record was stored encrypted (bit 14 of the stored type), whether or not
    /// ``payload`` has been decrypted since.
    public var isEncrypted: Bool

    /// Bytes of header in front of every record's stored payload on disk (the seed's format:
    /// a record takes `headerSize + payload.count` bytes).
    public static let headerSize = RecordHeader.size

    /// A record with these fields (for tests and for callers that build records themselves).
    public init(lsn: LSN, type: RecordType, tenant: UInt32, vshard: UInt16, payload: [UInt8], isEncrypted: Bool = false) {
        self.lsn = lsn
        self.type = type
        self.tenant = tenant
        self.vshard = vshard
        self.payload = payload
        self.isEncrypted = isEncrypted
    }
}
