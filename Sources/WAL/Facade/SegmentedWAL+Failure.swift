extension SegmentedWAL {
    /// Suspends until the WAL has failed, and throws that failure.
    ///
    /// For a supervisor that must stop when the WAL can no longer write — such as
    /// `WALService` in the `WALServiceLifecycle` product — without appending, committing or
    /// polling: the wait holds no thread, asks for no flush, and costs the writers nothing.
    ///
    /// Returns when the WAL is closed, or when the waiting task is cancelled.
    ///
    /// - Throws: ``WALError/failed(_:)`` with the original error, once a write or sync has
    ///   failed (immediately when it has failed already).
    public func waitForFailure() async throws(WALError) {
        do {
            // A durable LSN that is never reached: this watcher ends only by failure, close
            // or cancellation (nil).
            _ = try await logWriter.durableLSN(reaching: .max)
        } catch .closed {
            return
        }
    }
}
