import Foundation
import Metrics
import MetricsTestKit
import Synchronization
import Testing
@testable import WAL

/// One metrics backend for the whole test process (swift-metrics bootstraps once); each test
/// tells its own WAL's metrics apart by a unique dimension.
let testMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()

/// Checks that the log holds LSNs 1...count contiguously and that every acknowledged
/// (LSN, payload) pair is there.
private func expectLog(_ directory: String, count: Int, acknowledged: [LSN: [UInt8]]) throws {
    let records = try replayAll(directory)
    #expect(records.count == count)
    #expect(records.map(\.lsn) == Array(1...LSN(count)))
    var byLSN: [LSN: [UInt8]] = [:]
    for record in records { byLSN[record.lsn] = record.payload }
    var missing = 0
    for (lsn, payload) in acknowledged where byLSN[lsn] != payload { missing += 1 }
    #expect(missing == 0, "acknowledged records missing or different after replay")
}

@Suite("Group commit")
struct GroupCommitTests {
    @Test("Concurrent blocking commits: each is durable on return, LSNs follow buffer order", arguments: availableEngines)
    func concurrentThreadCommits(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, engine: engine, segmentTargetSize: 64 * 1024)
            configuration.bufferSize = 8192
            let wal = try SegmentedWAL(configuration: configuration)
            let writers = 16, perWriter = 150
            let acknowledged = Mutex<[LSN: [UInt8]]>([:])
            let problems = Mutex<[String]>([])
            runThreads(writers) { writer in
                var previous: LSN = 0
                for sequence in 0..<perWriter {
                    let payload = taggedPayload(writer: writer, sequence: sequence, size: 20 + (sequence * 37) % 400)
                    do {
                        let lsn = try wal.commit(.put, tenant: UInt32(writer), payload: payload)
                        if wal.durableLSN < lsn { problems.withLock { $0.append("LSN \(lsn) returned before durable") } }
                        if lsn <= previous { problems.withLock { $0.append("writer \(writer): LSN went backwards") } }
                        previous = lsn
                        acknowledged.withLock { $0[lsn] = payload }
                    } catch {
                        problems.withLock { $0.append("\(error)") }
                    }
                }
            }
            #expect(problems.withLock { $0 } == [])
            try wal.close()
            #expect(try segmentPaths(directory).count > 1, "small segments should have rolled over")
            try expectLog(directory, count: writers * perWriter, acknowledged: acknowledged.withLock { $0 })
        }
    }

    @Test("Async commits from many tasks", arguments: availableEngines)
    func concurrentAsyncCommits(engine: IOEngineChoice) async throws {
        try await withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, engine: engine, segmentTargetSize: 128 * 1024))
            let tasks = 64, perTask = 40
            let acknowledged = try await withThrowingTaskGroup(of: [(LSN, [UInt8])].self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        var mine: [(LSN, [UInt8])] = []
                        for sequence in 0..<perTask {
                            let payload = taggedPayload(writer: task, sequence: sequence)
                            let lsn = try await wal.commit(.put, payload: payload)
                            #expect(wal.durableLSN >= lsn)
                            mine.append((lsn, payload))
                        }
                        return mine
                    }
                }
                var all: [LSN: [UInt8]] = [:]
                for try await mine in group { for (lsn, payload) in mine { all[lsn] = payload } }
                return all
            }
            #expect(acknowledged.count == tasks * perTask)
            try wal.close()
            try expectLog(directory, count: tasks * perTask, acknowledged: acknowledged)
        }
    }

    @Test("Records larger than a buffer, appended concurrently, never interleave", arguments: availableEngines)
    func largeConcurrentRecords(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, engine: engine)
            configuration.bufferSize = 4096
            let wal = try SegmentedWAL(configuration: configuration)
            let acknowledged = Mutex<[LSN: [UInt8]]>([:])
            runThreads(8) { writer in
                for sequence in 0..<20 {
                    let payload = taggedPayload(writer: writer, sequence: sequence, size: 3000 + (writer * 4099 + sequence * 977) % 20000)
                    if let lsn = try? wal.commit(.put, payload: payload) { acknowledged.withLock { $0[lsn] = payload } }
                }
            }
            try wal.close()
            #expect(acknowledged.withLock { $0.count } == 160)
            try expectLog(directory, count: 160, acknowledged: acknowledged.withLock { $0 })
        }
    }

    @Test("Commits that wait together share one fdatasync")
    func commitsShareFdatasyncs() throws {
        try withTemporaryDirectory { directory in
            let id = UUID().uuidString
            _ = testMetrics
            var configuration = testConfiguration(directory)
            // Every flush waits 20 ms for company: the other committers are certain to join it.
            configuration.maxBatchDelay = .milliseconds(20)
            configuration.metricsDimensions = [("test", id)]
            let wal = try SegmentedWAL(configuration: configuration)
            let writers = 16, perWriter = 5
            runThreads(writers) { writer in
                for sequence in 0..<perWriter { _ = try? wal.commit(.put, payload: taggedPayload(writer: writer, sequence: sequence)) }
            }
            #expect(wal.durableLSN == LSN(writers * perWriter))
            let fdatasyncs = try testMetrics.expectCounter("wal_fdatasyncs_total", [("test", id)]).totalValue
            #expect(fdatasyncs >= 1)
            #expect(fdatasyncs <= Int64(writers * perWriter / 4), "\(fdatasyncs) fdatasyncs for \(writers * perWriter) commits")
            let perFlush = try testMetrics.expectRecorder("wal_records_per_flush", [("test", id)]).values
            #expect(perFlush.contains { $0 > 1 })
            #expect(Int(perFlush.reduce(0, +)) == writers * perWriter)
            try wal.close()
        }
    }

    @Test("Metrics count records, bytes, flushes, rollovers and name the engine", arguments: availableEngines)
    func metricsAreReported(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            let id = UUID().uuidString
            _ = testMetrics
            var configuration = testConfiguration(directory, engine: engine, segmentTargetSize: 4096)
            configuration.metricsDimensions = [("test", id)]
            let wal = try SegmentedWAL(configuration: configuration)
            for index in 0..<50 { try wal.append(.put, payload: [UInt8](repeating: UInt8(index), count: 100)) }
            try wal.sync()
            try wal.commit(.put, payload: [1, 2, 3])
            #expect(try testMetrics.expectCounter("wal_records_total", [("test", id)]).totalValue == 51)
            #expect(try testMetrics.expectCounter("wal_bytes_total", [("test", id)]).totalValue == 5003)
            #expect(try testMetrics.expectCounter("wal_flushes_total", [("test", id)]).totalValue >= 2)
            #expect(try testMetrics.expectCounter("wal_fdatasyncs_total", [("test", id)]).totalValue >= 2)
            #expect(try testMetrics.expectCounter("wal_rollovers_total", [("test", id)]).totalValue >= 1)
            #expect(try testMetrics.expectTimer("wal_commit_duration", [("test", id)]).values.count == 1)
            let kind = wal.engine.rawValue
            #expect(try testMetrics.expectGauge("wal_engine", [("test", id), ("engine", kind)]).lastValue == 1)
            try wal.close()
        }
    }

    @Test("An idle WAL's flusher thread uses no CPU")
    func idleFlusherSleeps() throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory))
            try wal.commit(.put, payload: [1])
            var tid: pid_t?
            for _ in 0..<100 where tid == nil {
                tid = wal.flusherThreadID
                if tid == nil { usleep(1000) }
            }
            let id = try #require(tid)
            func cpuTicks() throws -> Int {
                let stat = try String(contentsOfFile: "/proc/self/task/\(id)/stat", encoding: .utf8)
                // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
                let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
                return Int(fields[11])! + Int(fields[12])!
            }
            let before = try cpuTicks()
            usleep(500_000)
            #expect(try cpuTicks() - before == 0, "the flusher ran while the WAL was idle")
            try wal.close()
            #expect(wal.flusherThreadID == nil)
        }
    }

    @Test("Waiting for an LSN never appended is an error, not a hang")
    func waitingForAFutureLSN() async throws {
        try await withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory))
            let lsn = try wal.append(.put, payload: [1])
            #expect(throws: WALError.lsnNotAppended(lsn: lsn + 1, nextLSN: lsn + 1)) { try wal.waitUntilDurable(lsn + 1) }
            await #expect(throws: WALError.lsnNotAppended(lsn: lsn + 5, nextLSN: lsn + 1)) { try await wal.durable(lsn + 5) }
            try wal.waitUntilDurable(lsn)
            try await wal.durable(lsn)
            #expect(wal.durableLSN == lsn)
            try wal.close()
        }
    }

    @Test("requestDurability makes records durable in the background, without the caller waiting", arguments: availableEngines)
    func requestedDurabilityHappens(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, engine: engine))
            var last: LSN = 0
            for index in 0..<300 { last = try wal.append(.put, payload: [UInt8](repeating: UInt8(index % 251), count: 500)) }
            #expect(wal.durableLSN < last)
            try wal.requestDurability(upTo: last)
            var waited = 0
            while wal.durableLSN < last && waited < 60_000 {  // up to 60 s: the disk here stalls at times
                usleep(1000)
                waited += 1
            }
            #expect(wal.durableLSN >= last, "the flusher did not make the requested records durable")
            #expect(throws: WALError.lsnNotAppended(lsn: last + 1, nextLSN: last + 1)) { try wal.requestDurability(upTo: last + 1) }
            try wal.requestDurability(upTo: 1) // already durable: nothing to do
            try wal.close()
            #expect(throws: WALError.closed) { try wal.requestDurability(upTo: last) }
            #expect(try replayAll(directory).count == 300)
        }
    }

    @Test("Close makes pending records durable and releases waiters; later calls throw closed")
    func closeReleasesWaiters() async throws {
        try await withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory))
            var last: LSN = 0
            for index in 0..<100 { last = try wal.append(.put, payload: [UInt8(index)]) }
            let target = last
            let waiter = Task { try await wal.durable(target) }
            try wal.close()
            try await waiter.value
            #expect(wal.durableLSN == last)
            #expect(throws: WALError.closed) { try wal.append(.put, payload: [1]) }
            #expect(throws: WALError.closed) { try wal.commit(.put, payload: [1]) }
            #expect(throws: WALError.closed) { try wal.sync() }
            try wal.waitUntilDurable(last) // durable already: returns, even after close
            try wal.close()
            #expect(try replayAll(directory).count == 100)
        }
    }

    @Test("A failed fdatasync fails its waiters and every later call; reopening keeps every acknowledged record")
    func failedFdatasyncIsSticky() throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, engine: .posix))
            let acknowledged = Mutex<[LSN: [UInt8]]>([:])
            let failures = Mutex<[WALError]>([])
            let syncs = Mutex(0)
            let failSyncsAfter20 = FaultHooks.Handlers(error: { operation, _ in
                guard operation == "fdatasync" else { return nil }
                return syncs.withLock { count in
                    count += 1
                    return count > 20 ? EIO : nil
                }
            })
            FaultHooks.shared.with(directory, failSyncsAfter20) {
                runThreads(8) { writer in
                    for sequence in 0..<50 {
                        let payload = taggedPayload(writer: writer, sequence: sequence)
                        do throws(WALError) {
                            let lsn = try wal.commit(.put, payload: payload)
                            acknowledged.withLock { $0[lsn] = payload }
                        } catch {
                            failures.withLock { $0.append(error) }
                            return
                        }
                    }
                }
            }
            let errors = failures.withLock { $0 }
            #expect(errors.count == 8, "every writer must see the failure")
            #expect(errors.allSatisfy { $0.errno == EIO })
            do throws(WALError) {
                try wal.append(.put, payload: [1])
                Issue.record("append after a failed fdatasync must throw")
            } catch {
                guard case .failed(.io(let operation, let code, _)) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(operation == "fdatasync" && code == EIO)
            }
            let durableAtFailure = wal.durableLSN
            #expect(acknowledged.withLock { $0.keys.max() ?? 0 } <= durableAtFailure)
            try? wal.close()

            let reopened = try SegmentedWAL(configuration: testConfiguration(directory, engine: .posix))
            let records = try replayAll(directory)
            #expect(records.map(\.lsn) == Array(1..<reopened.nextLSN))
            var byLSN: [LSN: [UInt8]] = [:]
            for record in records { byLSN[record.lsn] = record.payload }
            for (lsn, payload) in acknowledged.withLock({ $0 }) { #expect(byLSN[lsn] == payload) }
            try reopened.commit(.put, payload: [9])
            try reopened.close()
        }
    }
}
