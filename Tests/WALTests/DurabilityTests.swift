import Foundation
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALSegments

@Suite("Durability and reopen")
struct DurabilityTests {
    /// 1,000 records with a sync after each through O_DIRECT on /tmp (ext4), then reopen
    /// and append again, twice.
    @Test(arguments: availableEngines)
    func thousandDirectRecordsSurviveReopenTwice(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            var expected: [[UInt8]] = []
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine, directIO: .required))
                #expect(wal.isDirectIO)
                for i in 0..<1000 {
                    let payload = bytes("record \(i) " + String(repeating: "x", count: i % 97))
                    #expect(try wal.append(.put, tenant: UInt32(i), vshard: 1, payload: payload) == LSN(i + 1))
                    try wal.sync()
                    #expect(wal.durableLSN == LSN(i + 1))
                    expected.append(payload)
                }
            }
            for round in 0..<2 {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine, directIO: .required))
                let replayed = try wal.records(from: 1, limit: 10_000).records
                #expect(replayed.map(\.payload) == expected, "round \(round)")
                #expect(replayed.map(\.lsn) == (1...LSN(expected.count)).map { $0 })
                #expect(wal.nextLSN == LSN(expected.count + 1))
                for i in 0..<10 {
                    let payload = bytes("round \(round) record \(i)")
                    try wal.append(.put, tenant: 0, vshard: 0, payload: payload)
                    expected.append(payload)
                    if i % 3 == 0 { try wal.sync() }
                }
                try wal.sync()
            }
            #expect(try replayAll(dir).map(\.payload) == expected)
        }
    }

    /// A segment is dense whatever the sync pattern: records written with syncs in the middle
    /// of 4 KiB blocks leave no zero gap, so the file is exactly the records laid end to end.
    @Test(arguments: availableEngines)
    func syncsInsideABlockLeaveNoZeroGap(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            var lengths: [Int] = []
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine, directIO: .required))
            for i in 0..<300 {
                let payload = [UInt8](repeating: UInt8(i & 0xFF) | 1, count: (i * 37) % 500)
                try wal.append(.put, payload: payload)
                lengths.append(RecordHeader.size + payload.count)
                if i % 7 == 0 { try wal.sync() }
            }
            try wal.sync()
            let path = dir + "/wal-00000000000000000001.seg"
            let logical = lengths.reduce(0, +)
            let onDisk = try fileBytes(path)
            // While active, the file may extend past the last record with zeros (block padding and
            // the zeros written ahead of small jobs), nothing else.
            #expect(onDisk.count >= logical && onDisk.count <= (logical + 4095) / 4096 * 4096 + BufferRing.zeroAhead)
            #expect(onDisk[logical...].allSatisfy { $0 == 0 })
            // Every record starts where the previous one ended.
            var offset = 0
            for (index, length) in lengths.enumerated() {
                let header = try #require(Array(onDisk[offset..<offset + RecordHeader.size]).withUnsafeBytes {
                    RecordHeader(decoding: $0)
                })
                #expect(header.lsn == LSN(index + 1))
                offset += length
            }
            try wal.close()
            #expect(try fileSize(path) == logical)
        }
    }

    /// A torn tail (half a record) is cut at reopen; the next records take its place and
    /// replay never shows the torn one or anything after it.
    @Test(arguments: availableEngines)
    func tornTailThenReopenThenAppend(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
                for i in 0..<10 { try wal.append(.put, payload: bytes("old-\(i)") + [UInt8](repeating: 0xAB, count: 1000)) }
                try wal.close()
            }
            let path = dir + "/wal-00000000000000000001.seg"
            let size = try fileSize(path)
            // Tear the last record (LSN 10) in the middle of its payload.
            try truncateFile(path, to: size - 500)
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
                #expect(wal.nextLSN == 10)
                #expect(try fileSize(path) <= size - 1030 + 4095)
                try wal.append(.delete, payload: bytes("new-10"))
                try wal.append(.delete, payload: bytes("new-11"))
                try wal.sync()
            }
            let records = try replayAll(dir)
            #expect(records.map(\.lsn) == Array(1...11))
            #expect(records[9].payload == bytes("new-10") && records[10].payload == bytes("new-11"))
            #expect(records.prefix(9).allSatisfy { $0.type == .put })
        }
    }

    /// Stale records past the valid end (a rewritten region of an earlier, longer log) are
    /// removed at reopen, so they can never come back when later records fill the gap.
    @Test(arguments: availableEngines)
    func staleRecordsAfterTheEndNeverReappear(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
                for i in 0..<20 { try wal.append(.put, payload: bytes("first-life-\(i)")) }
                try wal.close()
            }
            let path = dir + "/wal-00000000000000000001.seg"
            let original = try fileBytes(path)
            // Damage LSN 11's CRC: LSN 11...20 are now unreachable stale bytes behind a bad record.
            let recordLength = RecordHeader.size + bytes("first-life-10").count
            let offsetOf11 = (0..<10).reduce(0) { $0 + RecordHeader.size + bytes("first-life-\($1)").count }
            #expect(recordLength > 0)
            try patchFile(path, at: offsetOf11 + RecordHeader.size, with: [original[offsetOf11 + RecordHeader.size] ^ 0xFF])
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
                #expect(wal.nextLSN == 11)
                #expect(try fileSize(path) < original.count)
                // Records exactly as long as the stale ones: if the stale bytes were still there,
                // LSN 12...20 from the first life would line up behind them.
                try wal.append(.delete, payload: bytes("secnd-life-10"))
                try wal.sync()
            }
            let records = try replayAll(dir)
            #expect(records.count == 11)
            #expect(records.last?.payload == bytes("secnd-life-10"))
            let reopened = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            #expect(reopened.nextLSN == 12)
        }
    }

    /// Randomised: payload sizes from 0 B to a few MiB, random syncs, random close/reopen with
    /// small segments. Replay equals everything appended up to the last sync, in order.
    @Test(arguments: availableEngines, [UInt64(1), 2, 3])
    func randomisedAppendsSyncsAndReopens(engine: IOEngineChoice, seed: UInt64) throws {
        try randomised(engine: engine, method: .adaptive, seed: seed)
    }

    @Test(.enabled(if: availableEngines.contains(.ioUring)),
          arguments: [IOUringSyncMethod.dsyncWrites, .linkedFdatasync], [UInt64(4), 5])
    func randomisedWithOtherSyncMethods(method: IOUringSyncMethod, seed: UInt64) throws {
        try randomised(engine: .ioUring, method: method, seed: seed)
    }

    func randomised(engine: IOEngineChoice, method: IOUringSyncMethod, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        try withTemporaryDirectory { dir in
            var expected: [(RecordType, UInt32, [UInt8])] = []
            var configuration = testConfiguration(dir, engine: engine, segmentTargetSize: 256 << 10)
            configuration.ioUringSyncMethod = method
            var wal: SegmentedWAL? = try SegmentedWAL(configuration: configuration)
            for step in 0..<400 {
                let roll = Int.random(in: 0..<100, using: &rng)
                let size: Int
                switch roll {
                case 0..<2: size = Int.random(in: 1 << 20...3 << 20, using: &rng)
                case 2..<10: size = Int.random(in: 4000...70_000, using: &rng)
                case 10..<15: size = 0
                default: size = Int.random(in: 1...600, using: &rng)
                }
                let payload = randomPayload(count: size, using: &rng)
                let type: RecordType = roll % 2 == 0 ? .put : .delete
                let tenant = UInt32(step)
                #expect(try wal!.append(type, tenant: tenant, vshard: UInt16(step % 7), payload: payload) == LSN(expected.count + 1))
                expected.append((type, tenant, payload))
                if Int.random(in: 0..<4, using: &rng) == 0 { try wal!.sync() }
                if Int.random(in: 0..<40, using: &rng) == 0 {
                    try wal!.close()
                    wal = try SegmentedWAL(configuration: configuration)
                    #expect(wal!.nextLSN == LSN(expected.count + 1))
                }
            }
            try wal!.sync()
            #expect(try wal!.segments().count > 3)
            let records = try replayAll(dir)
            #expect(records.count == expected.count)
            for (record, want) in zip(records, expected) {
                #expect(record.type == want.0 && record.tenant == want.1)
                #expect(record.payload == want.2, "LSN \(record.lsn)")
            }
            // Replay from the middle starts exactly there, whichever segment holds it.
            let middle = LSN(expected.count / 2)
            #expect(try replayAll(dir, from: middle).first?.lsn == middle)
        }
    }

    /// Payloads up to 64 MiB work even though they exceed the 1 MiB write buffer; one byte more
    /// is refused and the WAL stays usable.
    @Test(arguments: availableEngines)
    func largestPayloadAndOneByteMore(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            var rng = SplitMix64(seed: 64)
            let largest = randomPayload(count: RecordHeader.maxPayloadLength, using: &rng)
            #expect(try wal.append(.put, payload: bytes("before")) == 1)
            #expect(try wal.append(.put, payload: largest) == 2)
            #expect(throws: WALError.payloadTooLarge(size: RecordHeader.maxPayloadLength + 1, limit: RecordHeader.maxPayloadLength)) {
                try wal.append(.put, payload: [UInt8](repeating: 1, count: RecordHeader.maxPayloadLength + 1))
            }
            #expect(try wal.append(.put, payload: bytes("after")) == 3)
            try wal.close()
            let records = try replayAll(dir)
            #expect(records.map(\.lsn) == [1, 2, 3])
            #expect(records[1].payload == largest)
            #expect(records[2].payload == bytes("after"))
        }
    }

    /// Appends made without a sync are durable after close (close syncs) and the reopened WAL
    /// continues after them; a closed WAL refuses work with `.closed`.
    @Test(arguments: availableEngines)
    func closeSyncsAndThenRefuses(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            try wal.append(.put, payload: bytes("unsynced"))
            try wal.close()
            try wal.close()
            #expect(throws: WALError.closed) { try wal.append(.put, payload: bytes("late")) }
            #expect(throws: WALError.closed) { try wal.sync() }
            #expect(throws: WALError.closed) { try wal.rollSegment() }
            #expect(try replayAll(dir).map(\.payload) == [bytes("unsynced")])
        }
    }

    /// Payloads of any Collection type (not only arrays) are accepted.
    @Test(arguments: availableEngines)
    func nonContiguousPayloads(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            try wal.append(.put, payload: (0..<200).lazy.map { UInt8($0) })
            try wal.append(.put, payload: bytes("slice")[1...])
            try wal.close()
            #expect(try replayAll(dir).map(\.payload) == [(0..<200).map { UInt8($0) }, bytes("lice")])
        }
    }
}

@Suite("Replay read-ahead")
struct ReadAheadTests {
    @Test("Records straddling read-ahead windows (small, beyond the headroom, larger than a window) replay intact",
          arguments: [DirectIOPolicy.automatic, .disabled])
    func straddlingRecords(directIO: DirectIOPolicy) throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, directIO: directIO))
            var rng = SplitMix64(seed: 42)
            let sizes = [100, 5_000, 70_000, 1_500_000, 300, 4_066, 65_536, 131_072, 1]
            var written: [[UInt8]] = []
            for round in 0..<12 {
                for size in sizes {
                    let payload = randomPayload(count: size + round, using: &rng)
                    try wal.append(.put, payload: payload)
                    written.append(payload)
                }
            }
            try wal.close()
            let records = try replayAll(directory)
            #expect(records.count == written.count)
            #expect(records.map(\.payload) == written)
            // A reader starting in the middle (segments skipped, windows re-read) agrees too.
            let tail = try replayAll(directory, from: 50)
            #expect(tail.map(\.payload) == Array(written[49...]))
        }
    }
}

extension ReadAheadTests {
    @Test("A replay that ends while a read-ahead is in flight waits for it before closing the file")
    func endWithReadAheadInFlight() throws {
        try withTemporaryDirectory { directory in
            // The active segment must be a preallocated one whose records end more than a
            // window before its end, so that the scanner has the next (zero) window in flight
            // when it reaches the end of the records.
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, segmentTargetSize: 4 << 20))
            var sequence = 0
            func append(_ count: Int) throws {
                for _ in 0..<count {
                    try wal.append(.put, payload: taggedPayload(writer: 1, sequence: sequence, size: 60_000))
                    sequence += 1
                }
                try wal.sync()
            }
            try append(40)
            Thread.sleep(forTimeInterval: 0.3)  // the background preallocator readies the next segment
            try append(40)                      // past 4 MiB: rolls into the preallocated file
            try append(40)
            let active = try #require(try wal.segments().last)
            let size = try #require(try FileManager.default.attributesOfItem(atPath: active.path)[.size] as? Int)
            try #require(size >= 4 << 20, "the active segment is preallocated (\(size) bytes)")
            // Every pread is slowed, so the read-ahead is still in flight when the cursor
            // closes the segment; closing the descriptor under it ended in EBADF (a
            // precondition failure) or a read from whatever file reused the descriptor.
            let slowReads = FaultHooks.Handlers(error: { operation, _ in
                if operation == "pread" { usleep(30_000) }
                return nil
            })
            let records = try FaultHooks.shared.with(directory, slowReads) { try replayAll(directory) }
            #expect(records.count == 120)
            try wal.close()
        }
    }
}

@Suite("Zero-ahead")
struct ZeroAheadTests {
    @Test("Zeros written ahead of small commits read as the end of the log and are cut on reopen", arguments: availableEngines)
    func zerosAheadAreTheEnd(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, engine: engine))
            var payloads: [[UInt8]] = []
            for index in 0..<40 {
                let payload = [UInt8](repeating: UInt8(index + 1), count: 90 + index)
                try wal.commit(.put, payload: payload)
                payloads.append(payload)
            }
            // A crash now: copy the directory as it is on disk while the WAL is still open.
            let segment = try #require(try segmentPaths(directory).first)
            let logicalEnd = payloads.reduce(0) { $0 + 30 + $1.count }
            #expect(try fileSize(segment) >= BufferRing.zeroAhead, "small commits should have written zeros ahead")
            try withTemporaryDirectory { copy in
                let copied = copy + "/" + (segment as NSString).lastPathComponent
                try writeFile(copied, try fileBytes(segment))
                #expect(try replayAll(copy).map(\.payload) == payloads)
                let reopened = try SegmentedWAL(configuration: testConfiguration(copy, engine: engine))
                #expect(try fileSize(copied) == logicalEnd, "reopen cuts the zeros after the last record")
                #expect(try reopened.commit(.put, payload: [7]) == 41)
                try reopened.close()
                #expect(try replayAll(copy).count == 41)
            }
            try wal.close()
            #expect(try fileSize(segment) == logicalEnd, "sealing cuts the zeros written ahead")
        }
    }
}
