import Glibc
import WALFormat

/// The ways to wait for durability: block (``waitUntilDurable(_:)``, ``sync()``), suspend
/// (``durable(_:)``), ask and go on (``requestDurability(upTo:)``), and follow without asking
/// (``durableLSN(reaching:)``, for tailers). Each either finds its LSN durable already, or
/// registers with the group commit in ``LogWriter`` and is released by the flush that covers it.
extension LogWriter {
    /// Blocks until every record up to `lsn` is durable, flushing itself when nobody else is.
    package func waitUntilDurable(_ lsn: LSN) throws(WALError) {
        let waiter: CommitWaiters.ThreadWaiter? = try locked { () throws(WALError) -> CommitWaiters.ThreadWaiter? in
            while true {
                if lastDurableLSN >= lsn { return nil }
                if let failure { throw WALError.failed(failure) }
                if isClosed { throw WALError.closed }
                guard lsn < lastNextLSN else { throw WALError.lsnNotAppended(lsn: lsn, nextLSN: lastNextLSN) }
                if !ioRoleHeld && flushesInOwnThread {
                    runCycle(want: lsn)
                    continue
                }
                // Someone else's flush is on disk: wait to be woken by the flush that covers
                // this LSN (run by whoever holds the role then, often the flusher thread).
                let waiter = CommitWaiters.ThreadWaiter()
                waiters.add(lsn: lsn, thread: waiter)
                demandArrived()
                return waiter
            }
        }
        if let outcome = waiter?.wait() { throw outcome }
    }

    /// Suspends (never blocks) until every record up to `lsn` is durable; the flusher thread
    /// does the flushing.
    package func durable(_ lsn: LSN) async throws(WALError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, WALError>? = locked {
                    if lastDurableLSN >= lsn { return .success(()) }
                    if let failure { return .failure(WALError.failed(failure)) }
                    if isClosed { return .failure(WALError.closed) }
                    guard lsn < lastNextLSN else { return .failure(WALError.lsnNotAppended(lsn: lsn, nextLSN: lastNextLSN)) }
                    waiters.add(lsn: lsn, task: continuation)
                    demandArrived()
                    return nil
                }
                if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
            }
        } catch {
            throw error as! WALError
        }
    }

    /// Starts making every record up to `lsn` durable without waiting (the flusher does it).
    package func requestDurability(upTo lsn: LSN) throws(WALError) {
        try locked { () throws(WALError) in
            try usableSegments()
            guard lsn < lastNextLSN else { throw WALError.lsnNotAppended(lsn: lsn, nextLSN: lastNextLSN) }
            guard lsn > lastDurableLSN, lsn > requestedLSN else { return }
            requestedLSN = lsn
            demandArrived()
        }
    }

    /// Suspends until the durable LSN reaches `lsn` — which need not be appended yet — and
    /// returns it; nil when the task is cancelled. Asks for no flush: a tailing reader follows
    /// what the writers make durable. Throws ``WALError/closed`` or ``WALError/failed(_:)``.
    package func durableLSN(reaching lsn: LSN) async throws(WALError) -> LSN? {
        let id = locked { watchers.makeID() }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: DurabilityWatchers.Continuation) in
                    let outcome: Result<LSN?, WALError>? = locked {
                        let known: Result<LSN?, WALError>? =
                            lastDurableLSN >= lsn ? .success(lastDurableLSN)
                            : failure.map { .failure(WALError.failed($0)) }
                            ?? (isClosed ? .failure(WALError.closed) : nil)
                        if let known {
                            watchers.forget(id: id)
                            return known
                        }
                        return watchers.add(id: id, lsn: lsn, continuation: continuation) ? nil : .success(nil)
                    }
                    if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
                }
            } onCancel: {
                let wake = self.locked { self.watchers.cancel(id: id) }
                wake?.resume()
            }
        } catch {
            throw error as! WALError
        }
    }

    /// Everything appended so far made durable.
    package func sync() throws(WALError) {
        let last = try locked { () throws(WALError) -> LSN in
            try usableSegments()
            return lastNextLSN - 1
        }
        try waitUntilDurable(last)
    }
}
