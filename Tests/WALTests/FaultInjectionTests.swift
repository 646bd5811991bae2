import Foundation
import Synchronization
import Testing
@testable import WAL

/// Fault injection at the boundary between the WAL and the kernel: a chosen system call fails
/// with EIO, ENOSPC or EDQUOT, or a write comes back short — through ``FaultHooks``, on the
/// POSIX engine's system calls and on the io_uring engine's completions, so both engines'
/// own error handling runs. Each test checks what the caller sees (a ``WALError`` naming the
/// operation and errno), that no commit is acknowledged unless durable, what the WAL does next
/// (sticky refusal after a failed write or sync; a rollover failure is reported and retried),
/// and that a reopened directory is a contiguous log holding every acknowledged record.
/// A thread-safe count of how often a fault site was reached.
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    /// Adds one and returns the new count.
    func increment() -> Int { count.withLock { $0 += 1; return $0 } }
}

@Suite("Fault injection")
struct FaultInjectionTests {
    static let errnos: [Int32] = [EIO, ENOSPC, EDQUOT]

    enum Site: String, CaseIterable, Sendable { case write, fdatasync }

    struct Outcome {
        var acknowledged: [LSN: [UInt8]] = [:]
        var errors: [WALError] = []
    }

    /// `threads` committers, `perThread` commits each (sizes from 10 B to ~20 KiB, so buffers
    /// fill and flush on their own too); a committer stops at its first error.
    static func commit(_ wal: SegmentedWAL, threads: Int = 4, perThread: Int = 60) -> Outcome {
        let outcome = Mutex(Outcome())
        runThreads(threads) { writer in
            for sequence in 0..<perThread {
                let payload = taggedPayload(writer: writer, sequence: sequence, size: sequence % 7 == 0 ? 20_000 : 10 + sequence)
                do throws(WALError) {
                    let lsn = try wal.commit(.put, payload: payload)
                    outcome.withLock { $0.acknowledged[lsn] = payload }
                } catch {
                    outcome.withLock { $0.errors.append(error) }
                    return
                }
            }
        }
        return outcome.withLock { $0 }
    }

    /// Reopens `configuration.directory` with no faults: the log must be contiguous from its
    /// first segment, hold every acknowledged record with its payload, and take a new commit.
    static func expectRecovered(_ configuration: WALConfiguration, acknowledged: [LSN: [UInt8]],
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let wal = try SegmentedWAL(configuration: configuration)
        let records = try replayAll(configuration.directory)
        let first = records.first?.lsn ?? 1
        #expect(records.map(\.lsn) == Array(first..<wal.nextLSN), "not contiguous", sourceLocation: sourceLocation)
        var byLSN: [LSN: [UInt8]] = [:]
        for record in records { byLSN[record.lsn] = record.payload }
        let lost = acknowledged.filter { byLSN[$0.key] != $0.value }.keys.sorted()
        #expect(lost.isEmpty, "acknowledged but lost: \(lost.prefix(10))", sourceLocation: sourceLocation)
        let lsn = try wal.commit(.put, payload: [7, 7, 7])
        #expect(lsn == (records.last?.lsn ?? 0) + 1, sourceLocation: sourceLocation)
        try wal.close()
    }

    /// Handlers failing the `after`-th and later occurrences of `site` with `code`, on whichever
    /// engine runs: POSIX system calls (`pwrite`/`fdatasync`) or io_uring completions.
    static func failing(_ site: Site, with code: Int32, after: Int, count: Counter) -> FaultHooks.Handlers {
        let trip: @Sendable () -> Bool = { count.increment() >= after }
        return FaultHooks.Handlers(
            error: { operation, _ in
                (operation == (site == .write ? "pwrite" : "fdatasync") && trip()) ? code : nil
            },
            completion: { operation, _, result in
                (operation == site.rawValue && trip()) ? -code : result
            })
    }

    @Test("A failed write or fdatasync fails its commits and every later call; reopening keeps every acknowledged record",
          arguments: availableEngines, Site.allCases)
    func failedWriteOrSyncIsSticky(engine: IOEngineChoice, site: Site) throws {
        // One flush in flight, and several (the flusher's pipeline on io_uring).
        for (code, flushes) in Self.errnos.flatMap({ code in [(code, 1), (code, 4)] }) {
            try withTemporaryDirectory { directory in
                var configuration = testConfiguration(directory, engine: engine, segmentTargetSize: 1 << 20)
                configuration.bufferSize = 16 << 10
                configuration.flushesInFlight = flushes
                // Only linked fdatasyncs complete as fdatasync on io_uring (dsync writes are writes).
                if site == .fdatasync { configuration.ioUringSyncMethod = .linkedFdatasync }
                let wal = try SegmentedWAL(configuration: configuration)
                let count = Counter()
                let outcome = FaultHooks.shared.with(directory, Self.failing(site, with: code, after: 12, count: count)) {
                    Self.commit(wal)
                }
                #expect(count.value >= 12, "the fault was never reached")
                #expect(outcome.errors.count == 4, "every committer must see the failure (errno \(code))")
                let expectedOperation = site == .fdatasync ? "fdatasync" : (wal.engine == .posix ? "pwrite" : "write")
                for error in outcome.errors {
                    guard case .failed(.io(let operation, let errno, let path)) = error else {
                        Issue.record("expected .failed(.io), got \(error)")
                        continue
                    }
                    #expect(operation == expectedOperation && errno == code && path.hasPrefix(directory))
                }
                #expect(outcome.acknowledged.keys.max() ?? 0 <= wal.durableLSN)
                // Sticky: nothing is accepted any more, whatever the call.
                #expect(throws: WALError.self) { try wal.append(.put, payload: [1]) }
                #expect(throws: WALError.self) { try wal.sync() }
                #expect(throws: WALError.self) { try wal.commit(.put, payload: [2]) }
                try? wal.close()
                try Self.expectRecovered(configuration, acknowledged: outcome.acknowledged)
            }
        }
    }

    @Test("Short writes are continued: no error, every record intact", arguments: availableEngines, [1, 4])
    func shortWritesAreContinued(engine: IOEngineChoice, flushes: Int) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, engine: engine, segmentTargetSize: 1 << 20)
            configuration.bufferSize = 64 << 10
            configuration.flushesInFlight = flushes
            let wal = try SegmentedWAL(configuration: configuration)
            let shortened = Mutex(0)
            // Half the bytes, kept a multiple of 4096 so O_DIRECT offsets stay aligned.
            let half: @Sendable (Int) -> Int? = { count in
                let half = (count / 2) & ~4095
                guard half > 0 else { return nil }
                shortened.withLock { $0 += 1 }
                return half
            }
            let outcome = FaultHooks.shared.with(directory, FaultHooks.Handlers(
                shortWrite: { _, count in half(count) ?? count },
                completion: { operation, _, result in
                    operation == "write" && result > 0 ? Int32(half(Int(result)) ?? Int(result)) : result
                })) {
                Self.commit(wal)
            }
            #expect(outcome.errors.isEmpty, "\(outcome.errors)")
            #expect(shortened.withLock { $0 } > 0, "no write was shortened")
            #expect(outcome.acknowledged.count == 240)
            try wal.close()
            try Self.expectRecovered(configuration, acknowledged: outcome.acknowledged)
        }
    }

    enum RolloverStep: String, CaseIterable, Sendable {
        /// Creating the next segment (no preallocation).
        case open
        /// Renaming the preallocated spare to the next segment's name.
        case rename
        /// Preallocating the spare in the background.
        case fallocate
    }

    @Test("A failed rollover is reported with its errno and retried; the WAL stays usable",
          arguments: RolloverStep.allCases)
    func failedRolloverIsRecoverable(step: RolloverStep) throws {
        for code in Self.errnos {
            try withTemporaryDirectory { directory in
                var configuration = testConfiguration(directory, engine: .posix, segmentTargetSize: 64 << 10)
                configuration.preallocation = step == .open ? .none : .allocated
                let wal = try SegmentedWAL(configuration: configuration)
                let failures = Mutex(0)
                let handlers = FaultHooks.Handlers(error: { operation, path in
                    // The first three attempts fail, then the fault clears (space was freed).
                    guard operation == step.rawValue, path != directory else { return nil }
                    return failures.withLock { count in
                        count += 1
                        return count <= 3 ? code : nil
                    }
                })
                var acknowledged: [LSN: [UInt8]] = [:]
                var errors: [WALError] = []
                FaultHooks.shared.with(directory, handlers) {
                    for sequence in 0..<400 {
                        let payload = taggedPayload(writer: 0, sequence: sequence, size: 1_000)
                        do throws(WALError) {
                            acknowledged[try wal.commit(.put, payload: payload)] = payload
                        } catch {
                            errors.append(error)
                        }
                    }
                }
                #expect(!errors.isEmpty, "the rollover never failed (\(step), errno \(code))")
                for error in errors {
                    // Reported as itself, not as a sticky failure: the log was never touched.
                    guard case .io(let operation, let errno, _) = error else {
                        Issue.record("expected .io, got \(error)")
                        continue
                    }
                    #expect(operation == step.rawValue && errno == code)
                }
                #expect(acknowledged.count == 400 - errors.count)
                #expect(try wal.segments().count > 3, "rollovers resume once the fault clears")
                try wal.close()
                try Self.expectRecovered(configuration, acknowledged: acknowledged)
            }
        }
    }
}

/// A real ENOSPC: a WAL on a 24 MiB ext4 image mounted with `mount -o loop` (root only; the
/// test says why it skips where that is not possible).
@Suite("Real ENOSPC")
struct RealENOSPCTests {
    @Test("A full file system: ENOSPC is reported, nothing acknowledged is lost, truncation makes room again",
          arguments: [SegmentPreallocation.allocated, .none])
    func fullFileSystem(preallocation: SegmentPreallocation) throws {
        guard geteuid() == 0 else {
            print("Real ENOSPC test skipped: mounting a loop image needs root")
            return
        }
        try withTemporaryDirectory { root in
            let image = root + "/fs.img"
            let mountPoint = root + "/mnt"
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
            guard run("/usr/bin/truncate", "-s", "24M", image) == 0,
                  run("/sbin/mkfs.ext4", "-q", "-F", "-m", "0", image) == 0,
                  run("/bin/mount", "-o", "loop", image, mountPoint) == 0 else {
                print("Real ENOSPC test skipped: could not create and mount a loop ext4 image here")
                return
            }
            defer { _ = run("/bin/umount", mountPoint) }

            var configuration = testConfiguration(mountPoint + "/wal", segmentTargetSize: 4 << 20)
            configuration.preallocation = preallocation
            var wal = try SegmentedWAL(configuration: configuration)
            var acknowledged: [LSN: [UInt8]] = [:]
            var failure: WALError?
            for sequence in 0..<10_000 {
                let payload = taggedPayload(writer: 0, sequence: sequence, size: 8_000)
                do throws(WALError) {
                    acknowledged[try wal.commit(.put, payload: payload)] = payload
                } catch {
                    failure = error
                    break
                }
            }
            let error = try #require(failure, "24 MiB never filled up")
            #expect(error.errno == ENOSPC, "\(error)")
            print("Real ENOSPC after \(acknowledged.count) commits: \(error)")

            // With preallocation, a rollover could not get its file: reported, the WAL goes on.
            // Without it, a write into the active segment failed: sticky, so reopen (recovery
            // must work on a full file system). Either way, truncation frees space for commits.
            if case .failed = error {
                #expect(preallocation == .none)
                try? wal.close()
                wal = try SegmentedWAL(configuration: configuration)
            }
            let result = try wal.truncate(before: wal.nextLSN)
            #expect(result.segmentsDeleted > 0)
            let payload = taggedPayload(writer: 1, sequence: 0, size: 8_000)
            acknowledged[try wal.commit(.put, payload: payload)] = payload
            try wal.close()
            // Reopen keeps every acknowledged record that truncation did not remove on purpose.
            let first = try SegmentDirectory.discover(configuration.directory).first?.firstLSN ?? 1
            try FaultInjectionTests.expectRecovered(configuration, acknowledged: acknowledged.filter { $0.key >= first })
        }
    }
}
