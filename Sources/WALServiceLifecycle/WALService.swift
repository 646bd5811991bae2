import Dispatch
import Logging
import ServiceLifecycle
import WAL

/// Runs a `SegmentedWAL` as a swift-service-lifecycle `Service`, so that the log closes
/// with the rest of the application and a failed log stops the application.
///
/// ```swift
/// let wal = try SegmentedWAL(configuration: .init(directory: "/var/lib/db/wal"))
/// let group = ServiceGroup(
///     services: [WALService(wal: wal), server],   // the WAL first: it shuts down last
///     gracefulShutdownSignals: [.sigterm, .sigint],
///     logger: logger
/// )
/// try await group.run()
/// ```
///
/// ``run()`` waits, holding no thread, until one of these happens:
///
/// - **Graceful shutdown** (a signal, or `ServiceGroup.triggerGracefulShutdown()`), or the
///   task is cancelled: it closes the WAL — which stops accepting appends (they throw
///   `WALError.closed`), makes every record appended so far durable, trims the active
///   segment and releases the directory lock — and returns only then. If that final sync
///   fails, `run()` throws the error.
/// - **The WAL fails** (a write or fdatasync failed, after which it refuses every write:
///   `WALError.failed`): it closes the WAL to release the directory and throws the
///   failure, so the `ServiceGroup` shuts the other services down and its `run()` throws it.
///   Reopening the directory recovers every acknowledged record.
/// - **The WAL is closed by its owner**: `run()` returns. A `ServiceGroup` treats a service that
///   returns on its own as finished and, by default, shuts the group down.
///
/// A `ServiceGroup` shuts its services down one at a time, in reverse order of the `services`
/// array, each after the one behind it has returned. List the `WALService` *before* the
/// services that append to the WAL, so that they have stopped appending before it closes.
public struct WALService: Service {
    /// The WAL this service closes; append to it from anywhere.
    public let wal: SegmentedWAL

    /// A service for `wal`, which the caller has opened. It logs through the WAL's own
    /// `WALConfiguration.logger`.
    public init(wal: SegmentedWAL) {
        self.wal = wal
    }

    /// Waits for graceful shutdown, cancellation or failure, then closes the WAL (see the
    /// type's documentation).
    ///
    /// - Throws: `WALError.failed` when the WAL failed; the error of the final sync
    ///   when closing failed.
    public func run() async throws {
        let logger = wal.configuration.logger
        do {
            try await cancelWhenGracefulShutdown { [wal] in
                try await wal.waitForFailure()
            }
        } catch {
            logger.error("WAL failed; closing it and ending the service", metadata: [
                "directory": "\(wal.configuration.directory)", "error": "\(error)",
            ])
            try? await closeWAL()  // releases the files and the directory lock; nothing is durable to add
            throw error
        }
        try await closeWAL()
        logger.info("WAL closed; every appended record is durable", metadata: [
            "directory": "\(wal.configuration.directory)", "durableLSN": "\(wal.durableLSN)",
        ])
    }

    /// `close()` syncs and trims the active segment, blocking its thread for an fdatasync or
    /// two: run it on a Dispatch thread so that it does not hold one of the few threads of the
    /// cooperative pool that the other services need while they shut down too.
    private func closeWAL() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async { [wal] in
                continuation.resume(with: Result { try wal.close() })
            }
        }
    }
}
