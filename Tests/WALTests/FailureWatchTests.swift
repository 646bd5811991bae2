import Foundation
import Testing
@testable import WAL

/// `waitForFailure()`, the hook a supervisor (WALService) uses to end when the WAL fails.
@Suite("Waiting for failure")
struct FailureWatchTests {
    @Test("waitForFailure throws the sticky failure of a failed fdatasync, and at once when called after it",
          arguments: availableEngines)
    func throwsTheFailure(engine: IOEngineChoice) async throws {
        try await withTemporaryDirectory { directory in
            var configuration = testConfiguration(directory, engine: engine)
            configuration.ioUringSyncMethod = .linkedFdatasync  // the fault is on the fdatasync
            let wal = try SegmentedWAL(configuration: configuration)
            let watcher = Task { () async -> WALError? in
                do throws(WALError) {
                    try await wal.waitForFailure()
                    return nil
                } catch {
                    return error
                }
            }
            try await Task.sleep(for: .milliseconds(20))  // let the watcher register
            try await wal.commit(.put, payload: [1])
            let count = Counter()
            let commitError = FaultHooks.shared.with(directory, FaultInjectionTests.failing(.fdatasync, with: EIO, after: 1, count: count)) {
                () -> WALError? in
                do throws(WALError) {
                    try wal.commit(.put, payload: [2])
                    return nil
                } catch {
                    return error
                }
            }
            #expect(commitError?.errno == EIO, "\(String(describing: commitError))")
            let failure = await watcher.value
            guard case .failed(.io("fdatasync", EIO, _))? = failure else {
                Issue.record("expected .failed(.io(fdatasync, EIO)), got \(String(describing: failure))")
                return
            }
            // Called after the failure: throws at once.
            await #expect(throws: failure!) { try await wal.waitForFailure() }
            try? wal.close()
        }
    }

    @Test("waitForFailure returns when the WAL is closed and when its task is cancelled")
    func returnsOnCloseAndCancellation() async throws {
        try await withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory))
            let cancelled = Task { try await wal.waitForFailure() }
            let closed = Task { try await wal.waitForFailure() }
            try await Task.sleep(for: .milliseconds(20))
            cancelled.cancel()
            try await cancelled.value
            try await wal.commit(.put, payload: [1])
            try wal.close()
            try await closed.value
            #expect(wal.watchersAreIdle)
        }
    }
}
