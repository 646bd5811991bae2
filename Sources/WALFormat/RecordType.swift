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
    /// The seed's `Noop` type, raw value 0 (not required).
    public static let noop = RecordType(rawValue: 0)
    /// The seed's `Put` type, raw value 0x8001 (required).
    public static let put = RecordType(rawValue: 0x8001)
    /// The seed's `Delete` type, raw value 0x8002 (required).
    public static let delete = RecordType(rawValue: 0x8002)
    /// The seed's `VectorPut` type, raw value 0x800A (required).
    public static let vectorPut = RecordType(rawValue: 0x800A)
    /// The seed's `VectorDelete` type, raw value 0x800B (required).
    public static let vectorDelete = RecordType(rawValue: 0x800B)
    /// The seed's `VectorParams` type, raw value 0x800C (required).
    public static let vectorParams = RecordType(rawValue: 0x800C)
    /// The seed's `CrdtDelta` type, raw value 0x8014 (required).
    public static let crdtDelta = RecordType(rawValue: 0x8014)
    /// The seed's `TimeseriesBatch` type, raw value 30 (not required: replay skips it where unknown).
    public static let timeseriesBatch = RecordType(rawValue: 30)
    /// The seed's `LogBatch` type, raw value 31 (not required: replay skips it where unknown).
    public static let logBatch = RecordType(rawValue: 31)
    /// The seed's `ArrayPut` type, raw value 0x8028 (required).
    public static let arrayPut = RecordType(rawValue: 0x8028)
    /// The seed's `ArrayDelete` type, raw value 0x8029 (required).
    public static let arrayDelete = RecordType(rawValue: 0x8029)
    /// The seed's `ArrayFlush` type, raw value 0x802A (required).
    public static let arrayFlush = RecordType(rawValue: 0x802A)
    /// The seed's `Transaction` type, raw value 0x8032 (required).
    public static let transaction = RecordType(rawValue: 0x8032)
    /// The seed's `SurrogateAlloc` type, raw value 0x8033 (required).
    public static let surrogateAlloc = RecordType(rawValue: 0x8033)
    /// The seed's `SurrogateBind` type, raw value 0x8034 (required).
    public static let surrogateBind = RecordType(rawValue: 0x8034)
    /// The seed's `Checkpoint` type, raw value 0x8064 (required).
    public static let checkpoint = RecordType(rawValue: 0x8064)
    /// The seed's `CollectionTombstoned` type, raw value 0x8065 (required).
    public static let collectionTombstoned = RecordType(rawValue: 0x8065)
    /// The seed's `LsnMsAnchor` type, raw value 102 (not required: replay skips it where unknown).
    public static let lsnMsAnchor = RecordType(rawValue: 102)
    /// The seed's `TemporalPurge` type, raw value 0x8067 (required).
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
