import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALSegments

/// The recovery bugs of issue "Every crash state reopens" (B1–B3, R1, R2) and the rule that
/// opening for writing refuses a log replay would refuse. Each test failed on 80b2f8f.
@Suite("Recovery")
struct RecoveryTests {
    /// B1. The flush of records 2–3 writes [0, 8192): block 0 rewritten (records 1–2), block 1
    /// new (record 3 starts exactly at 4096). A power cut keeps block 1 and loses block 0's
    /// rewrite: record 1 (acknowledged) is intact, then zeros up to 4096, then LSN 3. That is
    /// the end of the log (LSN 2 was never durable, so 3 cannot have been acknowledged), not
    /// an LSN gap — in the last segment. In a sealed segment the same bytes stay an error.
    @Test("B1: a lost rewrite of the partial block before a persisted next block ends the log", arguments: availableEngines)
    func lostPartialBlockRewriteEndsTheLog(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let first = [UInt8](repeating: 0x11, count: 2000 - RecordHeader.size)
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            let lsn1 = try wal.commit(.put, payload: first)
            let segment = try #require(try segmentPaths(dir).first)
            let durable = try fileBytes(segment)
            try wal.append(.put, payload: [UInt8](repeating: 0x22, count: 4096 - 2000 - RecordHeader.size))
            try wal.append(.put, payload: [UInt8](repeating: 0x33, count: 100))
            try wal.sync()
            var image = try fileBytes(segment)
            try wal.close()
            #expect(image.count >= 4096 + RecordHeader.size + 100)
            image.replaceSubrange(0..<4096, with: durable[0..<4096])  // block 0's rewrite lost

            try withTemporaryDirectory { copy in
                let name = (segment as NSString).lastPathComponent
                try writeFile(copy + "/" + name, image)
                let (records, error) = replayUntilError(copy)
                #expect(error == nil)
                #expect(records.map(\.lsn) == [lsn1])
                let reopened = try SegmentedWAL(configuration: testConfiguration(copy, engine: engine))
                #expect(reopened.nextLSN == 2)
                #expect(try fileSize(copy + "/" + name) == 2000, "cut right after the last durable record")
                #expect(try reopened.commit(.put, payload: bytes("after")) == 2)
                try reopened.close()
                let again = try replayAll(copy)
                #expect(again.map(\.lsn) == [1, 2])
                #expect(again.first?.payload == first)
            }

            // The same bytes in a sealed segment: a gap, not an end.
            try withTemporaryDirectory { copy in
                try writeFile(copy + "/" + SegmentName.make(firstLSN: 1), image)
                try writeFile(copy + "/" + SegmentName.make(firstLSN: 4), [])
                let (_, error) = replayUntilError(copy)
                #expect(error == .lsnGap(segment: SegmentName.make(firstLSN: 1), expected: 2, found: 3))
                #expect(throws: WALError.lsnGap(segment: SegmentName.make(firstLSN: 1), expected: 2, found: 3)) {
                    try SegmentedWAL(configuration: testConfiguration(copy, engine: engine))
                }
            }
        }
    }

    /// A higher LSN right after the previous record (no zeros between) cannot come from a
    /// crash: an error in the last segment too.
    @Test("A higher LSN directly after a record is a gap even in the last segment")
    func contiguousGapInTheLastSegmentIsAnError() throws {
        try withTemporaryDirectory { dir in
            var one = [UInt8](repeating: 0, count: 0)
            for lsn: LSN in [1, 3] {
                var header = RecordHeader(storedType: RecordType.put.rawValue, lsn: lsn, tenant: 0, vshard: 0, payloadLength: 4)
                let payload: [UInt8] = [1, 2, 3, 4]
                header.crc = payload.withUnsafeBytes { header.computeChecksum(payload: $0) }
                var encoded = [UInt8](repeating: 0, count: RecordHeader.size)
                encoded.withUnsafeMutableBytes { header.encode(into: $0) }
                one += encoded + payload
            }
            let path = dir + "/" + SegmentName.make(firstLSN: 1)
            try writeFile(path, one)
            #expect(replayUntilError(dir).error == .lsnGap(segment: SegmentName.make(firstLSN: 1), expected: 2, found: 3))
            #expect(throws: WALError.self) { try SegmentedWAL(configuration: testConfiguration(dir)) }
            #expect(try fileBytes(path) == one, "a refused open changes nothing")
        }
    }

    /// Descriptors the process holds on files under `directory`.
    private func descriptors(under directory: String) -> [String] {
        let fdDirectory = "/proc/self/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? []).compactMap {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: fdDirectory + "/" + $0))
        }.filter { $0.hasPrefix(directory + "/") }
    }

    /// B2. The O_DIRECT reopen of the next segment fails with EMFILE once (new file, and the
    /// renamed preallocated spare): one append reports it, no descriptor or file is left
    /// behind, and the next rollover succeeds.
    @Test("B2: a failed O_DIRECT reopen at rollover leaves nothing behind", arguments: [SegmentPreallocation.none, .allocated])
    func failedDirectReopenAtRolloverLeavesNothingBehind(preallocation: SegmentPreallocation) throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: .posix, segmentTargetSize: 64 << 10)
            configuration.preallocation = preallocation
            let wal = try SegmentedWAL(configuration: configuration)
            guard wal.isDirectIO else {
                try wal.close()
                withKnownIssue("/tmp refuses O_DIRECT here: there is no O_DIRECT reopen to fail") { throw CancellationError() }
                return
            }
            let first = try #require(try segmentPaths(dir).first)
            let opens = Mutex(0)
            let handlers = FaultHooks.Handlers(error: { operation, path in
                guard operation == "open", path.hasSuffix(".seg"), path != first else { return nil }
                return opens.withLock { count in
                    count += 1
                    return count == 2 ? EMFILE : nil  // the second open of the first new segment: the O_DIRECT one
                }
            })
            var acknowledged: [LSN: [UInt8]] = [:]
            var errors: [WALError] = []
            FaultHooks.shared.with(dir, handlers) {
                for sequence in 0..<200 {
                    let payload = taggedPayload(writer: 0, sequence: sequence, size: 1000)
                    do throws(WALError) {
                        acknowledged[try wal.commit(.put, payload: payload)] = payload
                    } catch {
                        errors.append(error)
                    }
                }
            }
            #expect(errors.count == 1, "\(errors.prefix(3))")
            #expect(errors.first?.errno == EMFILE)
            #expect(try segmentPaths(dir).count > 2, "later rollovers succeed")
            try wal.close()
            #expect(descriptors(under: dir).isEmpty, "leaked: \(descriptors(under: dir))")
            let records = try replayAll(dir)
            #expect(records.count == acknowledged.count)
            #expect(records.allSatisfy { acknowledged[$0.lsn] == $0.payload })
        }
    }

    /// B3. A misnamed last segment (its first record is below its name) is refused with an
    /// error naming the file, and not a byte changes.
    @Test("B3: a misnamed last segment is refused and left untouched", arguments: availableEngines)
    func misnamedLastSegmentIsRefused(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: engine, segmentTargetSize: 4096)
            configuration.preallocation = .none
            let wal = try SegmentedWAL(configuration: configuration)
            for index in 0..<30 { try wal.commit(.put, payload: [UInt8](repeating: UInt8(index), count: 1000)) }
            try wal.close()
            let last = try #require(try segmentPaths(dir).last)
            let lastFirst = try #require(SegmentName.parse((last as NSString).lastPathComponent))
            let renamed = SegmentDirectory.path(dir, firstLSN: lastFirst + 2)
            try FileManager.default.moveItem(atPath: last, toPath: renamed)
            let before = try fileBytes(renamed)
            do throws(WALError) {
                _ = try SegmentedWAL(configuration: configuration)
                Issue.record("a misnamed last segment was opened for writing")
            } catch {
                // The predecessor ends at lastFirst - 1; the name says lastFirst + 2.
                #expect(error == .lsnGap(segment: SegmentName.make(firstLSN: lastFirst + 2), expected: lastFirst, found: lastFirst + 2))
            }
            #expect(try fileBytes(renamed) == before, "a refused open changes nothing")
        }
    }

    /// B3, alone: a single segment whose first record is below its name.
    @Test("B3: a single segment whose first record is not its name is refused")
    func misnamedOnlySegmentIsRefused() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            for _ in 0..<3 { try wal.commit(.put, payload: bytes("record")) }
            try wal.close()
            let path = try #require(try segmentPaths(dir).first)
            let renamed = SegmentDirectory.path(dir, firstLSN: 5)
            try FileManager.default.moveItem(atPath: path, toPath: renamed)
            let before = try fileBytes(renamed)
            #expect(throws: WALError.corruption(segment: SegmentName.make(firstLSN: 5), offset: 0, lsn: 5,
                                                reason: "first record has LSN 1, but the segment's name says 5")) {
                try SegmentedWAL(configuration: testConfiguration(dir))
            }
            #expect(try fileBytes(renamed) == before)
        }
    }

    /// A stray empty segment after the log: a gap between the last two segments.
    @Test("A stray segment after the log is refused")
    func straySegmentAfterTheLogIsRefused() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            for _ in 0..<3 { try wal.commit(.put, payload: bytes("record")) }
            try wal.close()
            try writeFile(SegmentDirectory.path(dir, firstLSN: 9), [])
            #expect(throws: WALError.lsnGap(segment: SegmentName.make(firstLSN: 9), expected: 4, found: 9)) {
                try SegmentedWAL(configuration: testConfiguration(dir))
            }
        }
    }

    /// Open and replay agree on the shared vectors replay refuses: opening for writing refuses
    /// them too, with the same kind of error, and changes no byte.
    @Test("Opening refuses the vectors replay refuses", arguments: ["corrupt-sealed-segment", "lsn-gap", "unknown-required-type"])
    func openRefusesWhatReplayRefuses(vector: String) throws {
        try withTemporaryDirectory { dir in
            let source = VectorTests.root + "/" + vector
            for name in try FileManager.default.contentsOfDirectory(atPath: source) where name.hasSuffix(".seg") {
                try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
            }
            let before = try segmentPaths(dir).map { try fileBytes($0) }
            let replayError = try #require(replayUntilError(dir).error)
            do throws(WALError) {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir))
                Issue.record("\(vector): opened with nextLSN \(wal.nextLSN) although replay throws \(replayError)")
                try wal.close()
            } catch {
                #expect(error == replayError)
            }
            #expect(try segmentPaths(dir).map { try fileBytes($0) } == before)
        }
    }

    /// Damage deep in a sealed segment (not one of the last two) is replay's to find by
    /// default; `.full` verification finds it at open.
    @Test("Full verification at open finds damage in any sealed segment")
    func fullVerificationFindsOldDamage() throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, segmentTargetSize: 8192)
            configuration.preallocation = .none
            let wal = try SegmentedWAL(configuration: configuration)
            for index in 0..<40 { try wal.commit(.put, payload: [UInt8](repeating: UInt8(index), count: 1000)) }
            try wal.close()
            let first = try #require(try segmentPaths(dir).first)
            #expect(try segmentPaths(dir).count >= 4)
            try patchFile(first, at: 2000, with: [0xFF])
            let recent = try SegmentedWAL(configuration: configuration)  // the default checks only recent segments
            try recent.close()
            configuration.openVerification = .full
            #expect(throws: WALError.self) { try SegmentedWAL(configuration: configuration) }
            // The name chain is checked whatever the depth: a sealed segment renamed is refused.
            configuration.openVerification = .recent
            try FileManager.default.moveItem(atPath: first, toPath: SegmentDirectory.path(dir, firstLSN: 0))
            #expect(throws: WALError.self) { try SegmentedWAL(configuration: configuration) }
        }
    }

    /// R1. io_uring: a linked fdatasync cancelled although its write completed in full is not
    /// a durable flush.
    @Test("R1: -ECANCELED on an fdatasync after a full write fails the commit",
          .enabled(if: availableEngines.contains(.ioUring)))
    func cancelledFdatasyncAfterFullWriteFails() throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: .ioUring)
            configuration.ioUringSyncMethod = .linkedFdatasync
            let wal = try SegmentedWAL(configuration: configuration)
            let handlers = FaultHooks.Handlers(completion: { operation, _, result in
                operation == "fdatasync" ? -ECANCELED : result
            })
            let outcome: WALError? = FaultHooks.shared.with(dir, handlers) {
                do throws(WALError) {
                    try wal.commit(.put, payload: bytes("not synced"))
                    return nil
                } catch {
                    return error
                }
            }
            let segment = try #require(try segmentPaths(dir).first)
            #expect(outcome == .failed(.io(operation: "fdatasync", errno: ECANCELED, path: segment)))
            #expect(wal.durableLSN == 0)
            #expect(throws: WALError.self) { try wal.append(.put, payload: bytes("refused")) }
            try? wal.close()
        }
    }

    /// R2. Reads that come back short — or empty — before the end of the file (FUSE, NFS) are
    /// continued; recovery never takes them for a torn tail and never cuts.
    @Test("R2: short and empty reads before the end of the file never make recovery cut", arguments: availableEngines)
    func shortReadsNeverCut(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: engine)
            configuration.preallocation = .none
            let wal = try SegmentedWAL(configuration: configuration)
            var payloads: [[UInt8]] = []
            for sequence in 0..<300 {
                let payload = taggedPayload(writer: 0, sequence: sequence, size: 700)
                try wal.append(.put, payload: payload)
                payloads.append(payload)
            }
            try wal.sync()
            try wal.close()
            let segment = try #require(try segmentPaths(dir).first)
            let size = try fileSize(segment)
            let reads = Mutex(0)
            let handlers = FaultHooks.Handlers(shortRead: { _, count in
                reads.withLock { reads in
                    reads += 1
                    // Every third read returns nothing, the others at most 1000 bytes.
                    return reads % 3 == 0 ? 0 : min(count, 1000)
                }
            })
            let reopened: SegmentedWAL = try FaultHooks.shared.with(dir, handlers) {
                let wal = try SegmentedWAL(configuration: configuration)
                #expect(try replayAll(dir).map(\.payload) == payloads)
                return wal
            }
            #expect(reads.withLock { $0 } > 10, "the hook was used")
            #expect(reopened.nextLSN == 301)
            #expect(try fileSize(segment) == size, "nothing was cut")
            try reopened.close()
        }
    }

    /// R2: a file that keeps returning nothing below its size is an I/O error, not a short file.
    @Test("R2: reads that never progress are an I/O error, not the end of the log")
    func readsThatNeverProgressAreAnError() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: .posix))
            for _ in 0..<10 { try wal.commit(.put, payload: bytes("record")) }
            try wal.close()
            let segment = try #require(try segmentPaths(dir).first)
            let size = try fileSize(segment)
            let handlers = FaultHooks.Handlers(shortRead: { _, _ in 0 })
            FaultHooks.shared.with(dir, handlers) {
                #expect(throws: WALError.io(operation: "pread", errno: EIO, path: segment)) {
                    try SegmentedWAL(configuration: testConfiguration(dir, engine: .posix))
                }
            }
            #expect(try fileSize(segment) == size)
        }
    }
}
