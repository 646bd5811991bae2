import Foundation
import Testing
@testable import WAL
@testable import WALCommit
@testable import WALFormat
@testable import WALSegments
@testable import WALCrash

/// `record(at:)` and `records(from:through:)`: the sparse index, its bounds and its failures.
@Suite("Point reads by LSN")
struct PointReadTests {
    static func payload(_ lsn: LSN, epoch: Int = 1) -> [UInt8] {
        taggedPayload(writer: epoch, sequence: Int(lsn), size: 30 + Int(lsn * 37 % 900))
    }

    @Test("Every LSN reads back its own record, across segments, plain and encrypted", arguments: [false, true])
    func everyLSN(encrypted: Bool) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, segmentTargetSize: 256 << 10)
            if encrypted { configuration.encryption = KeyRing(current: .random(id: 4)) }
            let wal = try SegmentedWAL(configuration: configuration)
            for lsn in LSN(1)...3000 { try wal.append(.put, tenant: UInt32(lsn % 5), payload: Self.payload(lsn)) }
            try wal.sync()
            #expect(try wal.segments().count > 4)
            var rng = SplitMix64(seed: 11)
            for _ in 0..<400 {
                let lsn = LSN.random(in: 1...3000, using: &rng)
                let record = try #require(try wal.record(at: lsn))
                #expect(record.lsn == lsn && record.payload == Self.payload(lsn) && record.tenant == UInt32(lsn % 5))
                #expect(record.isEncrypted == encrypted)
            }
            let slice = try wal.records(from: 1234, through: 2345)
            #expect(slice.map(\.lsn) == Array(1234...2345))
            #expect(slice.allSatisfy { $0.payload == Self.payload($0.lsn) })
            #expect(try wal.records(from: 1, through: 3000).count == 3000)
            try wal.close()
        }
    }

    @Test("Bounds: nothing below the first retained or at/above nextLSN; a buffered record is made durable first")
    func bounds() throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, segmentTargetSize: 64 << 10))
            for lsn in LSN(1)...600 { try wal.commit(.put, payload: Self.payload(lsn)) }
            #expect(try wal.record(at: 5)?.payload == Self.payload(5))  // lists and indexes the first segments
            _ = try wal.truncate(before: 300)
            let first = try wal.firstLSN
            #expect(first > 1 && first <= 300)
            #expect(try wal.record(at: first - 1) == nil)
            #expect(try wal.record(at: first)?.lsn == first)
            #expect(try wal.records(from: 1, through: first + 1).map(\.lsn) == [first, first + 1])
            #expect(try wal.record(at: 601) == nil)
            #expect(try wal.records(from: 599, through: 10_000).map(\.lsn) == [599, 600])
            #expect(try wal.records(from: 10, through: 5).isEmpty)
            let buffered = try wal.append(.put, payload: Self.payload(601))
            #expect(wal.durableLSN == 600)
            #expect(try wal.record(at: buffered)?.payload == Self.payload(601))
            #expect(wal.durableLSN >= buffered)
            try wal.close()
        }
    }

    @Test("Reads follow rollovers and cuts: the index never serves a removed record")
    func followsRolloversAndCuts() throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, segmentTargetSize: 64 << 10))
            for lsn in LSN(1)...400 { try wal.commit(.put, payload: Self.payload(lsn)) }
            #expect(try wal.record(at: 400)?.payload == Self.payload(400))
            for lsn in LSN(401)...900 { try wal.commit(.put, payload: Self.payload(lsn)) }  // new segments since
            #expect(try wal.record(at: 899)?.payload == Self.payload(899))
            try wal.truncate(after: 350)
            for lsn in LSN(351)...500 { try wal.commit(.put, payload: Self.payload(lsn, epoch: 2)) }
            #expect(try wal.record(at: 400)?.payload == Self.payload(400, epoch: 2))
            #expect(try wal.record(at: 350)?.payload == Self.payload(350))
            #expect(try wal.record(at: 899) == nil)
            try wal.reset(to: 5000)
            #expect(try wal.record(at: 400) == nil)
            try wal.commit(.put, payload: Self.payload(5001, epoch: 3))
            #expect(try wal.records(from: 1, through: 6000).map(\.lsn) == [5001])
            try wal.close()
        }
    }

    @Test("A damaged record is an error, never a wrong or missing answer")
    func damage() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, segmentTargetSize: 64 << 10)
            var wal = try SegmentedWAL(configuration: configuration)
            for lsn in LSN(1)...400 { try wal.commit(.put, payload: Self.payload(lsn)) }
            try wal.close()
            let first = try #require(try SegmentDirectory.discover(directory).first)
            // Flip a payload byte of a record in the middle of the first segment.
            let records = try replayAll(directory).filter { $0.lsn < 40 }
            let offset = records.prefix(20).reduce(0) { $0 + RecordHeader.size + $1.payload.count } + RecordHeader.size + 3
            var bytes = try fileBytes(first.path)
            bytes[offset] ^= 0xFF
            try writeFile(first.path, bytes)
            var full = configuration
            full.openVerification = .recent  // the damage is in an old sealed segment: left to readers
            wal = try SegmentedWAL(configuration: full)
            #expect(throws: WALError.self) { try wal.record(at: 21) }
            #expect(throws: WALError.self) { try wal.records(from: 5, through: 30) }
            #expect(try wal.record(at: 20)?.payload == Self.payload(20))
            try wal.close()
        }
    }
}
