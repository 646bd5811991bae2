import Glibc
import WALFormat

/// The ways to wait for durability: block (``waitUntilDurable(_:)``, ``sync()``), suspend
/// (``durable(_:)``), ask and go on (``requestDurability(upTo:)``), and follow without asking
/// (``durableLSN(reaching:)``, for tailers). Each either finds its LSN durable already, or
/// registers with the group commit in ``LogWriter`` and is released by the flush that covers it.
extension LogWriter {
    /// Blocks until every record up to `lsn` is durable, flushing itself when nobody else is.
    /// Fails with ``WALError/truncated(after:)`` or ``WALError/logReset(to:)`` when a cut
    /// removed what `claim` is about — checked before waiting and after being woken, so a
    /// commit is never acknowledged for a record a cut took away before it was durable. A
    /// ``DurabilityClaim/prefix`` wait is never failed by a cut: what a cut removed needs no
    /// durability, so it waits for what is left of its prefix.
    package func waitUntilDurable(_ lsn: LSN, _ claim: DurabilityClaim) throws(WALError) {
        while true {
            let waiter: CommitWaiters.ThreadWaiter? = try locked { () throws(WALError) -> CommitWaiters.ThreadWaiter? in
                while true {
                    if let removed = cutLedger.removal(lsn, claim: claim) { throw removed }
                    let wanted = wantedLSN(lsn, claim)
                    if published.lsn >= wanted { return nil }
                    if let failure = lifecycle.failure { throw WALError.failed(failure) }
                    if lifecycle.isClosed { throw WALError.closed }
                    guard wanted < lastNextLSN else { throw WALError.lsnNotAppended(lsn: wanted, nextLSN: lastNextLSN) }
                    if !role.isHeld && flushesInOwnThread {
                        runFlights(want: wanted)
                        continue
                    }
                    // Someone else's flush is on disk: wait to be woken by the flush that covers
                    // this LSN (run by whoever holds the role then, often the flusher thread).
                    let waiter = CommitWaiters.ThreadWaiter()
                    published.waiters.add(lsn: wanted, thread: waiter)
                    demandArrived()
                    return waiter
                }
            }
            guard let waiter else { return }
            if let outcome = waiter.wait() {
                if Self.isCut(outcome), case .prefix = claim { continue }  // wait for what is left
                throw outcome
            }
            if let removed = locked({ cutLedger.removal(lsn, claim: claim) }) { throw removed }
            return
        }
    }

    /// The LSN a wait waits for: a prefix wait never waits beyond the log's end, which a cut
    /// may have moved below `lsn` (lock held).
    private func wantedLSN(_ lsn: LSN, _ claim: DurabilityClaim) -> LSN {
        if case .prefix = claim { return min(lsn, lastNextLSN - 1) }
        return lsn
    }

    private static func isCut(_ error: WALError) -> Bool {
        switch error {
        case .truncated, .logReset: true
        default: false
        }
    }

    /// Suspends (never blocks) until every record up to `lsn` is durable; the flusher thread
    /// does the flushing. Fails as ``waitUntilDurable(_:_:)`` when a cut removed what `claim`
    /// is about.
    package func durable(_ lsn: LSN, _ claim: DurabilityClaim) async throws(WALError) {
        while true {
            do {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let outcome: Result<Void, WALError>? = locked {
                        if let removed = cutLedger.removal(lsn, claim: claim) { return .failure(removed) }
                        let wanted = wantedLSN(lsn, claim)
                        if published.lsn >= wanted { return .success(()) }
                        if let failure = lifecycle.failure { return .failure(WALError.failed(failure)) }
                        if lifecycle.isClosed { return .failure(WALError.closed) }
                        guard wanted < lastNextLSN else { return .failure(WALError.lsnNotAppended(lsn: wanted, nextLSN: lastNextLSN)) }
                        published.waiters.add(lsn: wanted, task: continuation)
                        demandArrived()
                        return nil
                    }
                    if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
                }
            } catch {
                let error = error as! WALError
                if Self.isCut(error), case .prefix = claim { continue }
                throw error
            }
            if let removed = locked({ cutLedger.removal(lsn, claim: claim) }) { throw removed }
            return
        }
    }

    /// Starts making every record up to `lsn` durable without waiting (the flusher does it).
    package func requestDurability(upTo lsn: LSN) throws(WALError) {
        try locked { () throws(WALError) in
            _ = try lifecycle.usableSegment()
            guard lsn < lastNextLSN else { throw WALError.lsnNotAppended(lsn: lsn, nextLSN: lastNextLSN) }
            guard lsn > published.lsn, lsn > requestedLSN else { return }
            requestedLSN = lsn
            demandArrived()
        }
    }

    /// Suspends until the durable LSN reaches `lsn` — which need not be appended yet — and
    /// returns it; nil when the task is cancelled. Asks for no flush: a tailing reader follows
    /// what the writers make durable. Throws ``WALError/closed`` or ``WALError/failed(_:)``.
    package func durableLSN(reaching lsn: LSN) async throws(WALError) -> LSN? {
        let id = locked { published.watchers.makeID() }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: DurabilityWatchers.Continuation) in
                    let outcome: Result<LSN?, WALError>? = locked {
                        let known: Result<LSN?, WALError>? =
                            published.lsn >= lsn ? .success(published.lsn)
                            : lifecycle.failure.map { .failure(WALError.failed($0)) }
                            ?? (lifecycle.isClosed ? .failure(WALError.closed) : nil)
                        if let known {
                            published.watchers.forget(id: id)
                            return known
                        }
                        return published.watchers.add(id: id, lsn: lsn, continuation: continuation) ? nil : .success(nil)
                    }
                    if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
                }
            } onCancel: {
                let wake = self.locked { self.published.watchers.cancel(id: id) }
                wake?.resume()
            }
        } catch {
            throw error as! WALError
        }
    }

    /// Everything appended so far made durable.
    package func sync() throws(WALError) {
        let last = try locked { () throws(WALError) -> LSN in
            _ = try lifecycle.usableSegment()
            return lastNextLSN - 1
        }
        try waitUntilDurable(last, .prefix)
    }
}
