import WAL

/// Who appended a record: the crash campaign's cycle, the writer within it, and that writer's
/// sequence number. Every payload starts with its ID, and the rest of the payload is derived
/// from it, so any record read back can be checked on its own: a record whose bytes do not
/// match its ID was never appended.
struct RecordID: Hashable, Sendable, CustomStringConvertible {
    var cycle: UInt32
    var writer: UInt32
    var seq: UInt64

    var description: String { "cycle \(cycle) writer \(writer) seq \(seq)" }
}

/// The records the campaign writes: random sizes (mostly small, some spanning the writer's
/// buffers and segments), contents derived from the record's ID and a campaign seed.
struct Workload: Sendable {
    static let idSize = 16
    let seed: UInt64

    /// The payload of record `id`: 16 bytes of ID, then bytes from a generator seeded by the ID.
    func payload(_ id: RecordID) -> [UInt8] {
        var rng = SplitMix64(seed: seed ^ (UInt64(id.cycle) << 48) ^ (UInt64(id.writer) << 40) ^ id.seq &* 0x9E37_79B9)
        let roll = rng.next() % 100
        let size: Int
        switch roll {
        case 0..<70: size = Int(rng.next() % 300)          // small commits
        case 70..<97: size = 300 + Int(rng.next() % 8_000) // up to a few pages
        default: size = 8_000 + Int(rng.next() % 200_000)  // spans buffers and segments
        }
        var bytes = [UInt8](repeating: 0, count: Self.idSize + size)
        withUnsafeBytes(of: id.cycle.littleEndian) { bytes.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: id.writer.littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
        withUnsafeBytes(of: id.seq.littleEndian) { bytes.replaceSubrange(8..<16, with: $0) }
        var index = Self.idSize
        while index < bytes.count {
            var word = rng.next()
            for _ in 0..<8 where index < bytes.count {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }

    /// The tenant and vshard a record of `id` is written with (checked on replay too).
    func routing(_ id: RecordID) -> (tenant: UInt32, vshard: UInt16) {
        (id.writer, UInt16(truncatingIfNeeded: id.cycle))
    }

    /// The ID at the start of `payload`, or nil when it is too short to hold one.
    static func id(of payload: [UInt8]) -> RecordID? {
        guard payload.count >= idSize else { return nil }
        return payload.withUnsafeBytes { raw in
            RecordID(cycle: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
                     writer: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
                     seq: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// Whether `record` is exactly what the workload appended for the ID it carries.
    func isGenuine(_ record: WALRecord) -> RecordID? {
        guard record.type == .put, let id = Self.id(of: record.payload) else { return nil }
        let (tenant, vshard) = routing(id)
        guard record.tenant == tenant, record.vshard == vshard, record.payload == payload(id) else { return nil }
        return id
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
