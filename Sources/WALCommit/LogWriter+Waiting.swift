import Glibc
import WALFormat

/// The ways to wait for durability: block (``waitUntilDurable(_:)``, ``sync()``), suspend
/// (``durable(_:)``), ask and go on (``requestDurability(upTo:)``), and follow without asking
/// (``durableLSN(reaching:)``, for tailers). Each either finds its LSN durable already, or
/// registers with the group commit in ``LogWriter`` and is released by the flush that covers it.
/// What an append hands the commit that made it: the record's LSN, and how many cuts
/// (``LogCut``) the log had seen then. A cut can hand the same LSN to another record; the
/// ticket lets a commit tell its own record from that one.
package struct AppendTicket: Sendable, Equatable {
    package let lsn: LSN
    let cuts: Int
}

/// Which records a wait is about (see ``LogWriter/waitUntilDurable(_:_:)``).
package enum DurabilityClaim: Sendable {
    /// Everything up to the LSN, whatever records hold it (``LogWriter/sync()``, point reads).
    case prefix
    /// The records up to the LSN as the caller knows them: an LSN that a reset (or a cut below
    /// the first retained record) removed fails with that cut's error instead of succeeding
    /// for the empty space below the log's new start.
    case lsn
    /// The one record the ticket was issued for: the wait fails with the cut's error when a cut
    /// removed it, even if another record has the same LSN since.
    case record(AppendTicket)
}

extension LogWriter {
    /// The error of the first cut since `ticket` was issued that removed its record (lock held).
    func removal(of ticket: AppendTicket) -> WALError? {
        guard ticket.cuts < cutHistory.count else { return nil }  // no cut since: the usual case
        for cut in cutHistory.dropFirst(ticket.cuts) {
            switch cut.kind {
            case .reset: return .logReset(to: cut.lsn)
            case .truncateAfter where cut.lsn < ticket.lsn: return .truncated(after: cut.lsn)
            case .truncateAfter: continue
            }
        }
        return nil
    }

    /// Why `claim` fails now, if a cut removed what it is about (lock held).
    func removal(_ lsn: LSN, claim: DurabilityClaim) -> WALError? {
        switch claim {
        case .prefix: return nil
        case .lsn: return cutFloor.flatMap { lsn < $0.lsn ? $0.error : nil }
        case .record(let ticket): return removal(of: ticket)
        }
    }

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
                    if let removed = removal(lsn, claim: claim) { throw removed }
                    let wanted = wantedLSN(lsn, claim)
                    if lastDurableLSN >= wanted { return nil }
                    if let failure { throw WALError.failed(failure) }
                    if isClosed { throw WALError.closed }
                    guard wanted < lastNextLSN else { throw WALError.lsnNotAppended(lsn: wanted, nextLSN: lastNextLSN) }
                    if !ioRoleHeld && flushesInOwnThread {
                        runCycle(want: wanted)
                        continue
                    }
                    // Someone else's flush is on disk: wait to be woken by the flush that covers
                    // this LSN (run by whoever holds the role then, often the flusher thread).
                    let waiter = CommitWaiters.ThreadWaiter()
                    waiters.add(lsn: wanted, thread: waiter)
                    demandArrived()
                    return waiter
                }
            }
            guard let waiter else { return }
            if let outcome = waiter.wait() {
                if Self.isCut(outcome), case .prefix = claim { continue }  // wait for what is left
                throw outcome
            }
            if let removed = locked({ removal(lsn, claim: claim) }) { throw removed }
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
                        if let removed = removal(lsn, claim: claim) { return .failure(removed) }
                        let wanted = wantedLSN(lsn, claim)
                        if lastDurableLSN >= wanted { return .success(()) }
                        if let failure { return .failure(WALError.failed(failure)) }
                        if isClosed { return .failure(WALError.closed) }
                        guard wanted < lastNextLSN else { return .failure(WALError.lsnNotAppended(lsn: wanted, nextLSN: lastNextLSN)) }
                        waiters.add(lsn: wanted, task: continuation)
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
            if let removed = locked({ removal(lsn, claim: claim) }) { throw removed }
            return
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
        try waitUntilDurable(last, .prefix)
    }
}
