/// The type of a WAL record: an open set of 16-bit values.
///
/// Bit 15 (``requiredFlag``) marks a type that replay must understand: an unknown
/// type with this bit set stops replay with ``WALError/unknownRequiredRecordType(type:lsn:segment:)``,
/// while an unknown type without it is skipped. Bit 14 (``encryptedFlag``) is not part of
/// the type: it says how a record's payload is stored and is reported by
/// ``WALRecord/isEncrypted``. A `RecordType` never carries it.
///
/// Users define their own types with `RecordType(rawValue:)` and tell the WAL about them
/// through ``WALConfiguration/recordTypes``; the seed's types are named constants.
public struct RecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// Bit 15: replay must know this type.
    public static let requiredFlag: UInt16 = 0x8000
    /// Bit 14: the payload is stored encrypted. Stripped from a `RecordType`.
    public static let encryptedFlag: UInt16 = 0x4000

    /// The 16-bit value with the required bit as given and the encrypted bit clear.
    public let rawValue: UInt16

    /// Creates a type from its raw value. The encrypted bit (bit 14) is dropped.
    public init(rawValue: UInt16) {
        self.rawValue = rawValue & ~Self.encryptedFlag
    }

    /// Whether replay must understand this type (bit 15).
    public var isRequired: Bool { rawValue & Self.requiredFlag != 0 }

    /// Whether a stored header value has the encrypted bit (bit 14) set.
    public static func isEncrypted(storedValue: UInt16) -> Bool { storedValue & encryptedFlag != 0 }

    /// The seed's name for this type, or its hex value.
    public var description: String {
        if let name = Self.seedNames[self] { return name }
        return "0x" + String(rawValue, radix: 16, uppercase: true)
    }

    // The seed's record types, raw values including the required bit.
    public static let noop = RecordType(rawValue: 0)
    public static let put = RecordType(rawValue: 0x8001)
    public static let delete = RecordType(rawValue: 0x8002)
    public static let vectorPut = RecordType(rawValue: 0x800A)
    public static let vectorDelete = RecordType(rawValue: 0x800B)
    public static let vectorParams = RecordType(rawValue: 0x800C)
    public static let crdtDelta = RecordType(rawValue: 0x8014)
    public static let timeseriesBatch = RecordType(rawValue: 30)
    public static let logBatch = RecordType(rawValue: 31)
    public static let arrayPut = RecordType(rawValue: 0x8028)
    public static let arrayDelete = RecordType(rawValue: 0x8029)
    public static let arrayFlush = RecordType(rawValue: 0x802A)
    public static let transaction = RecordType(rawValue: 0x8032)
    public static let surrogateAlloc = RecordType(rawValue: 0x8033)
    public static let surrogateBind = RecordType(rawValue: 0x8034)
    public static let checkpoint = RecordType(rawValue: 0x8064)
    public static let collectionTombstoned = RecordType(rawValue: 0x8065)
    public static let lsnMsAnchor = RecordType(rawValue: 102)
    public static let temporalPurge = RecordType(rawValue: 0x8067)

    /// The seed type with this name, compared case-insensitively (`put`, `Checkpoint`, ...).
    public static func named(_ name: String) -> RecordType? {
        let lowered = name.lowercased()
        return seedNames.first { $0.value.lowercased() == lowered }?.key
    }

    /// Every type the seed defines: the default of ``WALConfiguration/recordTypes``.
    public static let seedTypes: Set<RecordType> = Set(seedNames.keys)

    private static let seedNames: [RecordType: String] = [
        .noop: "Noop", .put: "Put", .delete: "Delete", .vectorPut: "VectorPut",
        .vectorDelete: "VectorDelete", .vectorParams: "VectorParams", .crdtDelta: "CrdtDelta",
        .timeseriesBatch: "TimeseriesBatch", .logBatch: "LogBatch", .arrayPut: "ArrayPut",
        .arrayDelete: "ArrayDelete", .arrayFlush: "ArrayFlush", .transaction: "Transaction",
        .surrogateAlloc: "SurrogateAlloc", .surrogateBind: "SurrogateBind", .checkpoint: "Checkpoint",
        .collectionTombstoned: "CollectionTombstoned", .lsnMsAnchor: "LsnMsAnchor",
        .temporalPurge: "TemporalPurge",
    ]
}
