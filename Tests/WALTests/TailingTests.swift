import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALSegments

/// Live tailing (`records(from:follow:)`): writers and tailers in parallel.
@Suite("Live tailing")
struct TailingTests {
    private func configuration(_ dir: String, engine: IOEngineChoice = .automatic) -> WALConfiguration {
        var configuration = testConfiguration(dir, engine: engine, segmentTargetSize: 16 << 10)
        configuration.bufferSize = 16 << 10
        return configuration
    }

    @Test("Tailers receive every committed record exactly once, in order, across rollovers",
          arguments: availableEngines, [false, true])
    func tailersSeeEveryCommit(engine: IOEngineChoice, encrypted: Bool) async throws {
        try await withTemporaryDirectory { dir in
            var configuration = configuration(dir, engine: engine)
            // Encrypted segments start with a preamble: a tailer that opens a new segment before
            // its first write lands must pick the preamble up when it looks again.
            if encrypted { configuration.encryption = KeyRing(current: .random(id: 4)) }
            let wal = try SegmentedWAL(configuration: configuration)
            for i in 0..<50 { try await wal.commit(.put, payload: taggedPayload(writer: 9, sequence: i, size: 300)) }  // existing records
            let total = 50 + 4 * 250
            let tailers = (0..<8).map { _ in Task { try await tail(wal, from: 1, count: total) } }
            let committed = Locked<[LSN: [UInt8]]>([:])
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for sequence in 0..<250 {
                            let payload = taggedPayload(writer: writer, sequence: sequence, size: sequence % 10 == 0 ? 5_000 : 100)
                            let lsn = try! await wal.commit(.put, payload: payload)
                            committed.withLock { $0[lsn] = payload }
                        }
                    }
                }
            }
            var expected: [WALRecord] = []
            var replay = wal.records(from: 1)  // decrypts with the WAL's key ring
            try replay.forEach { expected.append($0) }
            #expect(expected.count == total)
            #expect(try wal.segments().count > 10, "rollovers must happen while tailing")
            for tailer in tailers {
                let received = try await tailer.value
                #expect(received.map(\.lsn) == Array(1...LSN(total)))
                #expect(received == expected, "tailed records differ from the replayed ones")
            }
            for (lsn, payload) in committed.withLock({ $0 }) { #expect(expected[Int(lsn) - 1].payload == payload) }
            try wal.close()
        }
    }

    @Test("A tailer waiting at the live edge stops promptly when cancelled, and when the WAL closes")
    func cancellationAndClose() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir))
            try await wal.commit(.put, payload: [1])
            let waiting = Task { () -> Int in
                var count = 0
                for try await _ in wal.records(from: 1, follow: true) { count += 1 }
                return count
            }
            try await Task.sleep(for: .milliseconds(100))
            let start = ContinuousClock.now
            waiting.cancel()
            #expect(try await waiting.value == 1)
            // Without the cancellation handler the tailer would wait for the next commit, which
            // never comes here; the bound is loose because this disk stalls for seconds at times.
            #expect(ContinuousClock.now - start < .seconds(10))

            let closing = Task { () -> Int in
                var count = 0
                for try await _ in wal.records(from: 1, follow: true) { count += 1 }
                return count
            }
            try await Task.sleep(for: .milliseconds(100))
            try await wal.commit(.put, payload: [2])
            try await Task.sleep(for: .milliseconds(50))
            try wal.close()
            #expect(try await closing.value == 2)
        }
    }

    @Test("Cancelling tailers, whether waiting or not, leaves no watcher behind")
    func cancellationLeavesNothing() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir))
            try await wal.commit(.put, payload: [1])
            for round in 0..<20 {
                let tailers = (0..<10).map { _ in
                    Task { () -> Int in
                        var count = 0
                        for try await _ in wal.records(from: 1, follow: true) { count += 1 }
                        return count
                    }
                }
                // Commits race with the cancellations: a wait that just ended (woken, or
                // answered at once) may still see its cancellation handler run.
                let committer = Task {
                    for _ in 0..<(round % 2 == 0 ? 50 : 5) { try await wal.commit(.put, payload: [2]) }
                }
                if round % 2 == 0 { try await Task.sleep(for: .milliseconds(20)) }  // some reach the live edge first
                for tailer in tailers { tailer.cancel() }
                for tailer in tailers { _ = try await tailer.value }
                try await committer.value
            }
            #expect(wal.watchersAreIdle)
            try wal.close()
        }
    }

    @Test("A tailer at the live edge reads new records from the writer's memory, not from the file",
          arguments: availableEngines)
    func liveEdgeFromMemory(engine: IOEngineChoice) async throws {
        try await withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            try await wal.commit(.put, payload: [0])
            let cache = wal.logWriter.liveEdge
            let tailer = Task { try await tail(wal, from: 1, count: 201) }
            for i in 1...200 {
                try await wal.commit(.put, payload: taggedPayload(writer: 1, sequence: i, size: 100))
                if i % 20 == 0 { try await Task.sleep(for: .milliseconds(2)) }  // let the tailer reach the edge
            }
            let received = try await tailer.value
            #expect(received.map(\.lsn) == Array(1...201))
            let hits = cache.hits.load(ordering: .relaxed), misses = cache.misses.load(ordering: .relaxed)
            #expect(hits >= 10, "the tailer's looks at the live edge must be answered from memory")
            #expect(misses <= 2, "only the first look (the segment opened before the tailer registered) reads the file")
            try wal.close()
        }
    }

    @Test("Records larger than the cache, and writes that overflow it, reach tailers intact")
    func largeRecordsWhileTailing() async throws {
        try await withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, segmentTargetSize: 8 << 20)
            configuration.bufferSize = 2 << 20  // jobs up to 2 MiB: larger than the 1 MiB cache
            let wal = try SegmentedWAL(configuration: configuration)
            let sizes = [100, 300_000, 5_000, 700_000, 100, 1_500_000, 40_000, 100]
            let total = sizes.count * 4
            let tailers = (0..<3).map { _ in Task { try await tail(wal, from: 1, count: total) } }
            for round in 0..<4 {
                for (i, size) in sizes.enumerated() {
                    try await wal.commit(.put, payload: taggedPayload(writer: round, sequence: i, size: size))
                }
            }
            var expected: [WALRecord] = []
            var replay = wal.records(from: 1)
            try replay.forEach { expected.append($0) }
            #expect(expected.count == total)
            for tailer in tailers { #expect(try await tailer.value == expected) }
            try wal.close()
        }
    }

    @Test("Truncating segments behind a tailer does not disturb it")
    func truncationBehindTheTailer() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir))
            var iterator = wal.records(from: 1, follow: true).makeAsyncIterator()
            var next: LSN = 1
            for round in 0..<10 {
                for i in 0..<40 { try await wal.commit(.put, payload: taggedPayload(writer: round, sequence: i, size: 400)) }
                for _ in 0..<40 {
                    let record = try #require(try await iterator.next())
                    #expect(record.lsn == next)
                    next += 1
                }
                // Everything the tailer has read may go.
                _ = try wal.truncate(before: next)
            }
            #expect(try wal.segments().first!.firstLSN > 100)
            try wal.close()
        }
    }

    @Test("Without follow, the stream ends at the durable end; only durable records are yielded")
    func withoutFollow() async throws {
        try await withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir))
            for i in 0..<20 { try await wal.commit(.put, payload: [UInt8(i)]) }
            try wal.append(.put, payload: [99])  // buffered, not durable
            var lsns: [LSN] = []
            for try await record in wal.records(from: 5, follow: false) { lsns.append(record.lsn) }
            #expect(lsns == Array(5...20))
            try wal.close()
        }
    }
}

/// Collects what a tailer yields until it has `count` records, checking each is durable.
private func tail(_ wal: SegmentedWAL, from lsn: LSN, count: Int) async throws -> [WALRecord] {
    var received: [WALRecord] = []
    for try await record in wal.records(from: lsn, follow: true) {
        #expect(record.lsn <= wal.durableLSN, "a record was yielded before it was durable")
        received.append(record)
        if received.count == count { break }
    }
    return received
}
