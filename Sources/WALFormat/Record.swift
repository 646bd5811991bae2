/// A log sequence number: 1 for the first record of a log, +1 per record.
public typealias LSN = UInt64

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
    /// The payload as stored (ciphertext followed by the 16-byte tag when ``isEncrypted``).
    public var payload: [UInt8]
    /// Whether the payload was stored encrypted (bit 14 of the stored type).
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
