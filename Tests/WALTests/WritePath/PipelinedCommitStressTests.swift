import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALIO

/// Eight threads committing at once with four flushes in flight, over and over: the workload of
/// the crash-state scenario `pipelinedConcurrentCommitters` without the enumeration of crash
/// states, so that many more interleavings of flights, completions and doorbells run (the
/// flush loop's assertions trap on a broken rule). The crash-state model follows the trace as
/// there (its recording slows every event, which changes the interleavings) and checks the
/// rules it can check without enumerating crash states. Every acknowledged record must replay.
/// `WAL_STRESS_ROUNDS` sets the rounds per engine and sync method (default 12).
@Suite("Pipelined commits under contention")
struct PipelinedCommitStressTests {
    static let rounds = ProcessInfo.processInfo.environment["WAL_STRESS_ROUNDS"].flatMap(Int.init) ?? 12

    /// Who writes: eight committers (append, then wait), or six committers beside two streaming
    /// writers (3 KB records that fill buffers, so full buffers queue up and go out unsynced;
    /// durability asked every sixth record without waiting, then waited for one request later).
    enum Mix: String, CaseIterable, Sendable {
        case committers
        case committersAndStreams
    }

    @Test("Concurrent writers with four flushes in flight keep every acknowledged record",
          arguments: IOUringSyncMethod.allCases, Mix.allCases)
    func concurrentWriters(method: IOUringSyncMethod, mix: Mix) throws {
        for engine in availableEngines {
            for round in 0..<Self.rounds {
                try withTemporaryDirectory { root in
                    try Self.round(root, engine: engine, method: method, mix: mix, round: round)
                }
            }
        }
    }

    static func round(_ root: String, engine: IOEngineChoice, method: IOUringSyncMethod, mix: Mix, round: Int) throws {
        var configuration = testConfiguration(root, engine: engine, segmentTargetSize: 1 << 20)
        configuration.bufferSize = 8192
        configuration.preallocation = .none
        configuration.flushesInFlight = 4
        configuration.ioUringSyncMethod = method
        let acknowledged = Mutex<[LSN: [UInt8]]>([:])
        let failures = Mutex<[String]>([])
        let model = CrashStateModel()
        try FaultHooks.shared.with(root, model.handlers) {
            let wal = try SegmentedWAL(configuration: configuration)
            runThreads(8) { writer in
                do {
                    if mix == .committersAndStreams && writer >= 6 {
                        var requested: [LSN] = []
                        for sequence in 0..<40 {
                            let payload = taggedPayload(writer: writer, sequence: sequence, size: 3000)
                            let lsn = try wal.append(.put, payload: payload)
                            acknowledged.withLock { $0[lsn] = payload }  // checked once the wait below returns
                            guard sequence % 6 == 5 || sequence == 39 else { continue }
                            try wal.requestDurability(upTo: lsn)
                            if let earlier = requested.last { try wal.waitUntilDurable(earlier) }
                            requested.append(lsn)
                        }
                        try wal.waitUntilDurable(requested.last!)
                        return
                    }
                    for sequence in 0..<40 {
                        let size = CrashStateTests.sizes[(sequence + writer + round) % CrashStateTests.sizes.count]
                        let payload = taggedPayload(writer: writer, sequence: sequence, size: size)
                        let lsn = try wal.append(.put, payload: payload)
                        try wal.waitUntilDurable(lsn)
                        acknowledged.withLock { $0[lsn] = payload }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            try wal.close()
        }
        let context = "\(engine) \(method) \(mix) round \(round)"
        #expect(failures.withLock { $0 } == [], "\(context)")
        #expect(model.now.violations == [], "\(context)")
        let records = try replayAll(root)
        let byLSN = Dictionary(uniqueKeysWithValues: records.map { ($0.lsn, $0.payload) })
        let expected = acknowledged.withLock { $0 }
        #expect(expected.count == 8 * 40, "\(context)")
        #expect(records.map(\.lsn) == Array(1...LSN(records.count)), "contiguous LSNs, \(context)")
        for (lsn, payload) in expected where byLSN[lsn] != payload {
            Issue.record("\(context): LSN \(lsn) lost or altered")
        }
    }
}
