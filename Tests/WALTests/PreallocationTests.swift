import Foundation
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALSegments

@Suite("Segment preallocation")
struct PreallocationTests {
    static let target: Int64 = 1 << 20

    func configuration(_ dir: String, _ mode: SegmentPreallocation, engine: IOEngineChoice) -> WALConfiguration {
        var configuration = testConfiguration(dir, engine: engine, segmentTargetSize: Self.target)
        configuration.preallocation = mode
        return configuration
    }

    /// Every policy: the spare is prepared once the active segment is half full, becomes the
    /// next segment at rollover (at full size), sealed segments are trimmed to their records,
    /// nothing of the spare is ever replayed, and close removes an unused spare.
    @Test(arguments: SegmentPreallocation.allCases, availableEngines)
    func rolloverUsesThePreparedFileAndTrimsSealedSegments(mode: SegmentPreallocation, engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir, mode, engine: engine))
            let spare = dir + "/" + Preallocator.spareName
            var payloads: [[UInt8]] = []
            var rng = SplitMix64(seed: 3)
            var sawSpare = false
            for i in 0..<900 {
                let payload = randomPayload(count: Int.random(in: 1000...5000, using: &rng), using: &rng)
                try wal.append(.put, tenant: UInt32(i), payload: payload)
                payloads.append(payload)
                if i % 10 == 0 { try wal.sync() }
                if FileManager.default.fileExists(atPath: spare) { sawSpare = true }
            }
            try wal.sync()
            #expect(sawSpare == (mode != .none))
            let segments = try wal.segments()
            #expect(segments.count >= 3)
            let logical = try replayAll(dir)
            #expect(logical.map(\.payload) == payloads)
            for segment in segments.dropLast() {
                let records = logical.filter { $0.lsn >= segment.firstLSN }.prefix { record in
                    segments.first { $0.firstLSN > segment.firstLSN }.map { record.lsn < $0.firstLSN } ?? true
                }
                let bytes = records.reduce(0) { $0 + RecordHeader.size + $1.payload.count }
                #expect(segment.size == Int64(bytes), "sealed \(segment.name) is trimmed to its records")
            }
            if mode != .none {
                #expect(segments.last!.size == Self.target, "the active segment is the preallocated file")
            }
            try wal.close()
            #expect(!FileManager.default.fileExists(atPath: spare))
            #expect(try replayAll(dir).map(\.payload) == payloads)
            let reopened = try SegmentedWAL(configuration: configuration(dir, mode, engine: engine))
            #expect(reopened.nextLSN == 901)
        }
    }

    /// Reopening a WAL whose active segment is a preallocated (zero-tailed) file resumes after
    /// its last record, and new records follow.
    @Test(arguments: availableEngines)
    func reopenInsideAPreallocatedSegment(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            do {
                let wal = try SegmentedWAL(configuration: configuration(dir, .zeroFilled, engine: engine))
                for i in 0..<400 { try wal.append(.put, payload: [UInt8](repeating: UInt8(i & 0xFF), count: 3000)) }
                try wal.sync()
                // Simulate a crash: no close, so the active segment keeps its preallocated tail.
                let active = try #require(try wal.segments().last)
                #expect(active.size == Self.target)
                withExtendedLifetime(wal) {}
                _ = try? wal.close()
            }
            let wal = try SegmentedWAL(configuration: configuration(dir, .zeroFilled, engine: engine))
            #expect(wal.nextLSN == 401)
            try wal.append(.delete, payload: bytes("after reopen"))
            try wal.close()
            let records = try replayAll(dir)
            #expect(records.count == 401)
            #expect(records.last?.payload == bytes("after reopen"))
        }
    }

    /// A spare left by a crash (here full of garbage) is removed at open and never read.
    @Test func leftoverSpareIsRemovedAtOpen() throws {
        try withTemporaryDirectory { dir in
            var rng = SplitMix64(seed: 1)
            try FileManager.default.createDirectory(atPath: dir + "/wal", withIntermediateDirectories: false)
            try writeFile(dir + "/wal/" + Preallocator.spareName, randomPayload(count: 10_000, using: &rng))
            let wal = try SegmentedWAL(configuration: configuration(dir + "/wal", .zeroFilled, engine: .automatic))
            #expect(!FileManager.default.fileExists(atPath: dir + "/wal/" + Preallocator.spareName))
            try wal.append(.put, payload: bytes("x"))
            try wal.close()
            #expect(try replayAll(dir + "/wal").count == 1)
        }
    }

    /// Real ENOSPC from a small ext4 image: preallocating the next segment fails, the append
    /// that needed the rollover reports it (errno and path), nothing is lost, and the WAL keeps
    /// working in the active segment (the size limit is soft).
    @Test(.enabled(if: geteuid() == 0, "mounting an ext4 image needs root"))
    func enospcWhilePreallocatingIsReportedAtRolloverAndNothingIsLost() throws {
        try withTemporaryDirectory { dir in
            let image = dir + "/fs.img"
            let point = dir + "/mnt"
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: false)
            guard run("/usr/bin/truncate", "-s", "16M", image) == 0,
                  run("/usr/sbin/mkfs.ext4", "-q", "-F", image) == 0,
                  run("/usr/bin/mount", "-o", "loop", image, point) == 0 else {
                withKnownIssue("cannot mount a loop ext4 image here; ENOSPC not exercised") { throw CancellationError() }
                return
            }
            defer { _ = run("/usr/bin/umount", point) }
            let free = try #require(try FileManager.default.attributesOfFileSystem(forPath: point)[.systemFreeSize] as? NSNumber).int64Value
            // The active segment (target) fits, but the spare (another target) cannot fit beside it.
            let target = AlignedBuffer.alignDown(free * 9 / 10)
            var config = testConfiguration(point + "/wal", segmentTargetSize: target)
            config.preallocation = .allocated
            let wal = try SegmentedWAL(configuration: config)
            let payload = [UInt8](repeating: 0x5A, count: 100_000)
            var appended = 0
            var failure: WALError?
            for i in 0..<1000 {
                do throws(WALError) {
                    try wal.append(.put, payload: payload)
                    appended += 1
                    if i % 10 == 0 { try wal.sync() }
                } catch {
                    failure = error
                    break
                }
            }
            let error = try #require(failure, "rollover must report the preallocation failure")
            #expect(error == .io(operation: "fallocate", errno: ENOSPC, path: point + "/wal/" + Preallocator.spareName))
            #expect(try wal.segments().count == 1, "the failed rollover changed nothing")
            // Still usable: appends go on in the active segment (its size limit is soft), and
            // once it has grown by the retry distance the rollover is tried again and goes into
            // a plain new segment.
            var more = 0
            while try wal.segments().count == 1 && more < 10 {
                try wal.append(.put, payload: payload)
                appended += 1
                more += 1
            }
            #expect(try wal.segments().count == 2)
            #expect(more == 2, "one append within the retry distance, then the rollover")
            try wal.close()
            #expect(!FileManager.default.fileExists(atPath: point + "/wal/" + Preallocator.spareName))
            let records = try replayAll(point + "/wal")
            #expect(records.count == appended)
            #expect(records.allSatisfy { $0.payload == payload })
        }
    }
}
