import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALCommit
@testable import WALFormat
@testable import WALSegments
@testable import WALCrash

/// `truncate(after:)` and `reset(to:)`: where the cut falls, what waiters and tailers see, and
/// that a crash at any point leaves either the old log or exactly the cut one.
@Suite("Cutting the log's end")
struct LogCutTests {
    static func payload(_ epoch: Int, _ lsn: LSN) -> [UInt8] {
        taggedPayload(writer: epoch, sequence: Int(lsn), size: 40 + Int(lsn % 7) * 90)
    }

    /// Commits `count` records of `epoch` and returns their LSNs.
    @discardableResult
    static func commit(_ wal: SegmentedWAL, epoch: Int, count: Int) throws -> [LSN] {
        try (0..<count).map { _ in try wal.commit(.put, payload: payload(epoch, wal.nextLSN)) }
    }

    /// The replayed log as (LSN, epoch) pairs, checking each payload against its tag.
    static func epochs(_ directory: String, keyRing: KeyRing? = nil) throws -> [(lsn: LSN, epoch: Int)] {
        try replayAll(directory, keyRing: keyRing).map { record in
            let epoch = (1...9).first { payload($0, record.lsn) == record.payload }
            #expect(epoch != nil, "LSN \(record.lsn) holds bytes never appended under it")
            return (record.lsn, epoch ?? -1)
        }
    }

    static func expectLog(_ directory: String, _ expected: [(ClosedRange<LSN>, Int)], keyRing: KeyRing? = nil,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let want = expected.flatMap { range, epoch in range.map { ($0, epoch) } }
        let got = try epochs(directory, keyRing: keyRing)
        #expect(got.map(\.lsn) == want.map(\.0), sourceLocation: sourceLocation)
        #expect(got.map(\.epoch) == want.map(\.1), sourceLocation: sourceLocation)
    }

    @Test("truncate(after:) in the active segment: the next append gets lsn + 1, reopen agrees",
          arguments: availableEngines)
    func cutInActiveSegment(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, engine: engine)
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 100)
            try wal.truncate(after: 60)
            #expect(wal.nextLSN == 61)
            #expect(wal.durableLSN == 60)
            #expect(wal.cutCount == 1)
            try Self.expectLog(directory, [(1...60, 1)])
            #expect(try Self.commit(wal, epoch: 2, count: 5) == Array(61...65))
            try wal.close()
            try Self.expectLog(directory, [(1...60, 1), (61...65, 2)])
            let again = try SegmentedWAL(configuration: configuration)
            #expect(again.nextLSN == 66)
            try again.close()
            #expect(!FileManager.default.fileExists(atPath: directory + "/" + LogCut.fileName))
        }
    }

    @Test("truncate(after:) in a sealed segment deletes the later ones; on a boundary keeps the whole earlier segment",
          arguments: availableEngines)
    func cutInSealedSegment(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, engine: engine, segmentTargetSize: 16 << 10)
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 300)
            let segments = try wal.segments()
            #expect(segments.count >= 5)
            // Inside the second segment.
            let inside = segments[1].firstLSN + 3
            try wal.truncate(after: inside)
            #expect(wal.nextLSN == inside + 1)
            #expect(try wal.segments().map(\.firstLSN) == [segments[0].firstLSN, segments[1].firstLSN])
            try Self.expectLog(directory, [(1...inside, 1)])
            try Self.commit(wal, epoch: 2, count: 40)
            try Self.expectLog(directory, [(1...inside, 1), ((inside + 1)...(inside + 40), 2)])
            // Exactly on a boundary: the last record of the first segment.
            let boundary = segments[1].firstLSN - 1
            try wal.truncate(after: boundary)
            #expect(try wal.segments().map(\.firstLSN) == [segments[0].firstLSN])
            #expect(try Self.commit(wal, epoch: 3, count: 1) == [boundary + 1])
            try wal.close()
            try Self.expectLog(directory, [(1...boundary, 1), ((boundary + 1)...(boundary + 1), 3)])
            let again = try SegmentedWAL(configuration: configuration)
            #expect(again.nextLSN == boundary + 2)
            try again.close()
        }
    }

    @Test("truncate(after:) at or above the last record changes nothing; below the first retained empties the log")
    func cutEdges() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, segmentTargetSize: 16 << 10)
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 200)
            try wal.truncate(after: 200)
            try wal.truncate(after: 5000)
            #expect(wal.nextLSN == 201)
            #expect(wal.cutCount == 0)
            let checkpoint: LSN = 150
            _ = try wal.truncate(before: checkpoint)
            let first = try #require(try wal.segments().first?.firstLSN)
            #expect(first > 1)
            try wal.truncate(after: first - 10)
            #expect(wal.nextLSN == first - 9)
            #expect(try replayAll(directory).isEmpty)
            #expect(try wal.segments().map(\.firstLSN) == [first - 9])
            try Self.commit(wal, epoch: 2, count: 3)
            try wal.close()
            try Self.expectLog(directory, [((first - 9)...(first - 7), 2)])
        }
    }

    @Test("reset(to:) below, inside and above the log: empty, next append lsn + 1, across reopen",
          arguments: [LSN(0), 40, 77, 5000])
    func reset(to target: LSN) throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, segmentTargetSize: 16 << 10)
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 77)
            try wal.reset(to: target)
            #expect(wal.nextLSN == target + 1)
            #expect(try replayAll(directory).isEmpty)
            try wal.close()
            let again = try SegmentedWAL(configuration: configuration)
            #expect(again.nextLSN == target + 1)
            try Self.commit(again, epoch: 2, count: 4)
            try again.close()
            try Self.expectLog(directory, [((target + 1)...(target + 4), 2)])
        }
    }

    @Test("A cut in an encrypted log: the log continues in a new segment and replays decrypted")
    func cutEncrypted() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, segmentTargetSize: 16 << 10)
            let ring = KeyRing(current: .random(id: 3))
            configuration.encryption = ring
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 120)
            try wal.truncate(after: 70)
            try Self.commit(wal, epoch: 2, count: 10)
            try wal.close()
            try Self.expectLog(directory, [(1...70, 1), (71...80, 2)], keyRing: ring)
            let again = try SegmentedWAL(configuration: configuration)
            try again.reset(to: 500)
            try Self.commit(again, epoch: 3, count: 2)
            try again.close()
            try Self.expectLog(directory, [(501...502, 3)], keyRing: ring)
        }
    }

    @Test("Records still buffered above the cut are dropped; their waiters get truncated(after:)")
    func waitersOfDroppedRecords() async throws {
        try await withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory)
            configuration.maxBatchDelay = .zero
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 10)
            for _ in 0..<20 { try wal.append(.put, payload: Self.payload(1, wal.nextLSN)) }  // 11...30, buffered
            // Waiters registered under the WAL's lock before the cut: record 12 survives, 25 does not.
            let survivor = Task { try await wal.durable(12) }
            let dropped = Task { () -> WALError? in
                do { try await wal.durable(25); return nil } catch let error as WALError { return error }
            }
            try await Task.sleep(for: .milliseconds(20))
            try wal.truncate(after: 15)
            try await survivor.value
            let outcome = try await dropped.value
            // Either it was durable before the cut (the flusher won the race) or it was dropped.
            #expect(outcome == nil || outcome == .truncated(after: 15))
            #expect(wal.nextLSN == 16)
            try wal.close()
            try Self.expectLog(directory, [(1...15, 1)])
        }
    }

    @Test("Commit waiters above the cut are released with the cut's error, the others stay")
    func waitersReleasedAbove() throws {
        var waiters = CommitWaiters()
        let low = CommitWaiters.ThreadWaiter(), high = CommitWaiters.ThreadWaiter(), higher = CommitWaiters.ThreadWaiter()
        waiters.add(lsn: 10, thread: low)
        waiters.add(lsn: 16, thread: high)
        waiters.add(lsn: 40, thread: higher)
        #expect(waiters.release(above: 40, outcome: .truncated(after: 40)) == nil)
        let releasedAbove = waiters.release(above: 15, outcome: .truncated(after: 15))
        let released = try #require(releasedAbove)
        #expect(waiters.highest == 10)
        released.resume()
        #expect(high.wait() == .truncated(after: 15))
        #expect(higher.wait() == .truncated(after: 15))
        let releasedUpTo = waiters.release(upTo: 10)
        let rest = try #require(releasedUpTo)
        rest.resume()
        #expect(low.wait() == nil)
    }

    @Test("A live tailer above the cut ends with truncated(after:); one below it goes on into the new records")
    func tailersSeeTheCut() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, segmentTargetSize: 16 << 10)
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 100)
            // Ahead: has read up to 90.
            var ahead = wal.records(from: 1, follow: true).makeAsyncIterator()
            for _ in 1...90 { _ = try await ahead.next() }
            // Behind: has read up to 30.
            var behind = wal.records(from: 1, follow: true).makeAsyncIterator()
            for _ in 1...30 { _ = try await behind.next() }
            // Waiting at the live edge.
            let waiting = Task { () -> Result<WALRecord?, WALError> in
                var iterator = wal.records(from: 101, follow: true).makeAsyncIterator()
                do throws(WALError) { return .success(try await iterator.next()) } catch { return .failure(error) }
            }
            try await Task.sleep(for: .milliseconds(50))
            try wal.truncate(after: 50)
            try Self.commit(wal, epoch: 2, count: 60)  // 51...110: LSNs the tailers saw before, new records
            do throws(WALError) {
                _ = try await ahead.next()
                Issue.record("the tailer that had read past the cut went on")
            } catch {
                #expect(error == .truncated(after: 50))
            }
            if case .failure(let error) = await waiting.value {
                #expect(error == .truncated(after: 50))
            } else {
                Issue.record("the tailer waiting at the live edge went on")
            }
            var got: [(LSN, [UInt8])] = []
            for _ in 31...110 { if let record = try await behind.next() { got.append((record.lsn, record.payload)) } }
            #expect(got.map(\.0) == Array(31...110))
            #expect(got.allSatisfy { $0.1 == Self.payload($0.0 <= 50 ? 1 : 2, $0.0) })
            try wal.reset(to: 1000)
            do throws(WALError) {
                _ = try await behind.next()
                Issue.record("the tailer went on across a reset")
            } catch {
                #expect(error == .logReset(to: 1000))
            }
            // A tailer positioned exactly at the reset's next LSN goes on.
            var after = wal.records(from: 1001, follow: true).makeAsyncIterator()
            try Self.commit(wal, epoch: 3, count: 1)
            #expect(try await after.next()?.payload == Self.payload(3, 1001))
            try wal.close()
        }
    }

    @Test("An interrupted cut: readers honour the intent, reopening finishes it; a damaged intent is refused")
    func interruptedCut() throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, segmentTargetSize: 16 << 10)
            var wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 300)
            try wal.close()
            let segments = try SegmentDirectory.discover(directory)
            let cut = LogCut(kind: .truncateAfter, lsn: segments[1].firstLSN + 2)
            try cut.record(in: directory)
            // Half applied: the last segment deleted, the others still whole.
            try FileManager.default.removeItem(atPath: segments.last!.path)
            try Self.expectLog(directory, [(1...cut.lsn, 1)])
            wal = try SegmentedWAL(configuration: configuration)
            #expect(wal.nextLSN == cut.lsn + 1)
            try wal.close()
            #expect(!FileManager.default.fileExists(atPath: LogCut.path(in: directory)))
            #expect(try SegmentDirectory.discover(directory).count == 2)

            // A reset recorded, nothing applied: readers see an empty log.
            try LogCut(kind: .reset, lsn: 9000).record(in: directory)
            #expect(try replayAll(directory).isEmpty)
            wal = try SegmentedWAL(configuration: configuration)
            #expect(wal.nextLSN == 9001)
            try wal.close()

            // A leftover temporary intent is not an intent.
            try writeFile(LogCut.path(in: directory) + ".tmp", Array(repeating: 0xAB, count: 20))
            wal = try SegmentedWAL(configuration: configuration)
            #expect(wal.nextLSN == 9001)
            try wal.close()
            #expect(!FileManager.default.fileExists(atPath: LogCut.path(in: directory) + ".tmp"))

            // A damaged intent is corruption, for the writer and for readers.
            var bytes = LogCut(kind: .truncateAfter, lsn: 1).encoded
            bytes[9] ^= 0xFF
            try writeFile(LogCut.path(in: directory), bytes)
            #expect(throws: WALError.self) { try SegmentedWAL(configuration: configuration) }
            #expect(throws: WALError.self) { try replayAll(directory) }
        }
    }

    @Test("A cut that fails part-way fails the WAL; reopening finishes it", arguments: ["unlink", "ftruncate", "rename"])
    func failedCut(operation: String) throws {
        try withTemporaryDirectory { directory in
            let configuration = testConfiguration(directory, segmentTargetSize: 16 << 10)
            let wal = try SegmentedWAL(configuration: configuration)
            try Self.commit(wal, epoch: 1, count: 300)
            let cutAt = try wal.segments()[1].firstLSN + 2
            // Fails the first `operation` after the intent is durable (the rename: the intent's own).
            let intent = LogCut.path(in: directory)
            let thrown = FaultHooks.shared.with(directory, .init(error: { op, _ in
                op == operation && (operation == "rename" || FileManager.default.fileExists(atPath: intent)) ? EIO : nil
            })) {
                do throws(WALError) { try wal.truncate(after: cutAt); return nil as WALError? } catch { return error }
            }
            #expect(thrown?.errno == EIO)
            #expect(throws: WALError.self) { try wal.commit(.put, payload: [1]) }
            try? wal.close()
            let again = try SegmentedWAL(configuration: configuration)
            // The rename of the intent failed: the old log stands. Otherwise the cut is finished.
            let expectedNext = operation == "rename" ? 301 : cutAt + 1
            #expect(again.nextLSN == expectedNext)
            try again.close()
            try Self.expectLog(directory, [(1...(expectedNext - 1), 1)])
        }
    }

    @Test("reset(to:) refuses an LSN that leaves none for the next record")
    func invalidLSN() throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory))
            #expect(throws: WALError.invalidArgument("LSN \(LSN.max) leaves no LSN for the next record (the last is \(LSNDomain.last))")) {
                try wal.reset(to: .max)
            }
            try Self.commit(wal, epoch: 1, count: 2)
            try wal.close()
            #expect(throws: WALError.closed) { try wal.truncate(after: 1) }
        }
    }
}

/// Every crash state of a log that is cut twice — `truncate(after:)` into a sealed segment,
/// then `reset(to:)` — with commits before, between and after (the crash model of
/// ``CrashStateModel``): before a cut the log is the old one with every acknowledged record;
/// while it runs, either the whole old log or exactly the cut one; after it returned, the cut
/// one plus at least the acknowledged new records, and never a removed record.
@Suite("Crash states of cuts")
struct LogCutCrashStateTests {
    enum Phase: Hashable { case before, duringTruncate, betweenCuts, duringReset, afterReset }

    @Test("Every crash state around truncate(after:) and reset(to:) reopens as the old or the cut log",
          arguments: CrashStateModel.Unit.allCases, [false, true])
    func everyCrashStateAroundCuts(unit: CrashStateModel.Unit, encrypted: Bool) throws {
        var totals = (states: 0, distinct: 0, problems: [String]())
        for engine in availableEngines {
            try withTemporaryDirectory { root in
                let directory = root + "/wal"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
                var configuration = CrashStateTests.configuration(.rolloverWithoutPreallocation, directory: directory, engine: engine)
                configuration.segmentTargetSize = 6 << 10
                if encrypted { configuration.encryption = CrashStateTests.keyRing }
                let model = CrashStateModel()
                let log = try CrashStateTests.Log(configuration, model: model)
                let count = 14 * CrashStateTests.scale
                var boundaries: [Int] = []
                let cutAt: LSN = 5
                let resetTo: LSN = 200
                try FaultHooks.shared.with(directory, model.handlers) {
                    for _ in 0..<count { try log.commit(LogCutTests.payload(1, log.wal.nextLSN)) }
                    boundaries.append(model.events)
                    try log.wal.truncate(after: cutAt)
                    model.cut(after: cutAt, reset: false)
                    boundaries.append(model.events)
                    for _ in 0..<6 { try log.commit(LogCutTests.payload(2, log.wal.nextLSN)) }
                    boundaries.append(model.events)
                    try log.wal.reset(to: resetTo)
                    model.cut(after: resetTo, reset: true)
                    boundaries.append(model.events)
                    for _ in 0..<4 { try log.commit(LogCutTests.payload(3, log.wal.nextLSN)) }
                    try log.wal.close()
                }
                totals.problems += model.now.violations
                let oldLog = (1...LSN(count)).map { ($0, 1) }
                let truncated = oldLog.prefix(Int(cutAt))
                let beforeReset = Array(truncated) + (cutAt + 1...cutAt + 6).map { ($0, 2) }
                var seen = Set<Int>()
                var rng = SplitMix64(seed: 77 + UInt64(unit.rawValue))
                for (index, disk) in model.moments().enumerated() {
                    let phase: Phase = index < boundaries[0] ? .before : index < boundaries[1] ? .duringTruncate
                        : index < boundaries[2] ? .betweenCuts : index < boundaries[3] ? .duringReset : .afterReset
                    let choices = disk.choices(unit: unit)
                    let exhaustive = choices.count <= CrashStateTests.exhaustiveLimit
                    let states = exhaustive ? choices.all() : (0..<CrashStateTests.samples).map { _ in choices.random(using: &rng) }
                    for state in states {
                        totals.states += 1
                        try withImageDirectory { image in
                            let files = try disk.materialise(state, of: choices, unit: unit, source: directory, target: image)
                            var hasher = Hasher()
                            for name in files.keys.sorted() { hasher.combine(name); hasher.combine(files[name]!) }
                            hasher.combine(disk.acknowledged)
                            hasher.combine(phase)
                            guard seen.insert(hasher.finalize()).inserted else { return }
                            totals.distinct += 1
                            var reopen = configuration
                            reopen.directory = image
                            reopen.engine = .posix
                            if let problem = Self.check(image, configuration: reopen, phase: phase, acknowledged: disk.acknowledged,
                                                        oldLog: oldLog, truncated: Array(truncated), beforeReset: beforeReset,
                                                        resetTo: resetTo) {
                                totals.problems.append("[\(engine), moment \(index), \(phase)] \(problem)")
                            }
                        }
                    }
                }
            }
        }
        print("crash states around cuts [\(unit)\(encrypted ? ", encrypted" : "")]: \(totals.states) states, \(totals.distinct) distinct opened, problems = \(totals.problems.count)")
        #expect(totals.problems.isEmpty, "\(totals.problems.prefix(5))")
        #expect(totals.distinct > 50)
    }

    /// What is wrong with one crash state, or nil.
    static func check(_ image: String, configuration: WALConfiguration, phase: Phase, acknowledged: LSN,
                      oldLog: [(LSN, Int)], truncated: [(LSN, Int)], beforeReset: [(LSN, Int)], resetTo: LSN) -> String? {
        do {
            let wal = try SegmentedWAL(configuration: configuration)
            defer { try? wal.close() }
            let got = try LogCutTests.epochs(image, keyRing: configuration.encryption).map { ($0.lsn, $0.epoch) }
            func isPrefix(of log: [(LSN, Int)], atLeast: LSN, empty: LSN = 0) -> Bool {
                got.count <= log.count && zip(got, log).allSatisfy { $0 == $1 } && (got.last?.0 ?? empty) >= atLeast
            }
            func equals(_ log: [(LSN, Int)]) -> Bool { got.count == log.count && zip(got, log).allSatisfy { $0 == $1 } }
            let ok: Bool
            switch phase {
            case .before:
                ok = isPrefix(of: oldLog, atLeast: acknowledged)
            case .duringTruncate:
                ok = equals(oldLog) || equals(truncated)
            case .betweenCuts:
                ok = isPrefix(of: beforeReset, atLeast: acknowledged) && got.count >= truncated.count
            case .duringReset:
                ok = equals(beforeReset) || (got.isEmpty && wal.nextLSN == resetTo + 1)
            case .afterReset:
                let after = (resetTo + 1...resetTo + 4).map { ($0, 3) }
                ok = isPrefix(of: after, atLeast: acknowledged, empty: resetTo) && (got.last?.0 ?? resetTo) + 1 == wal.nextLSN
            }
            guard ok else {
                return "replayed \(got.map { "\($0.0)/\($0.1)" }.joined(separator: " ")), acknowledged \(acknowledged)"
            }
            let expected = wal.nextLSN
            let lsn = try wal.commit(.put, payload: LogCutTests.payload(4, expected))
            guard lsn == (got.last?.0 ?? expected - 1) + 1 || got.isEmpty else { return "a new commit got LSN \(lsn)" }
            return nil
        } catch {
            return "refused: \(error)"
        }
    }
}
