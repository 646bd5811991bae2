import WALFormat

/// A record lent to a closure by ``RecordStream/withNextRecord(_:)``, its payload pointing
/// into the stream's read window: no copy per record. Valid only inside the closure — copy
/// what must outlive it (`Array(view.payload)`).
public struct RecordView {
    /// The record's log sequence number.
    public let lsn: LSN
    /// The record's type, without the encrypted bit.
    public let type: RecordType
    /// The tenant the record belongs to.
    public let tenant: UInt32
    /// The virtual shard the record belongs to.
    public let vshard: UInt16
    /// The payload (the plaintext of a decrypted record); borrowed, see the type's docs.
    public let payload: UnsafeRawBufferPointer
    /// Whether the record was stored encrypted (its payload is the plaintext when the stream
    /// had the key, the stored ciphertext ‖ tag otherwise).
    public let isEncrypted: Bool

    init(_ header: RecordHeader, type: RecordType, payload: UnsafeRawBufferPointer, isEncrypted: Bool) {
        self.lsn = header.lsn
        self.type = type
        self.tenant = header.tenant
        self.vshard = header.vshard
        self.payload = payload
        self.isEncrypted = isEncrypted
    }
}
