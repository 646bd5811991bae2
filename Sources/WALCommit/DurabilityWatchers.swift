import WALFormat

/// Readers waiting for the durable LSN to reach a point (live tailing), each a continuation.
///
/// Unlike a commit waiter, a watcher asks for no flush — it follows what the writers make
/// durable — and may wait for an LSN not appended yet. A watcher is resumed once: with the
/// durable LSN when it reaches the watched one, with nil when its task is cancelled, or with
/// the error that ends the WAL (closed, failed). Not thread-safe: lives under the WAL's lock.
struct DurabilityWatchers {
    typealias Continuation = CheckedContinuation<LSN?, any Error>

    /// A resumption to run once the WAL's lock is released.
    struct Wake {
        let continuation: Continuation
        let outcome: Result<LSN?, WALError>

        func resume() { continuation.resume(with: outcome.mapError { $0 as any Error }) }
    }

    private var watching: [UInt64: (lsn: LSN, continuation: Continuation)] = [:]
    /// Watchers cancelled before they were added (the cancellation handler ran first).
    private var cancelledEarly: Set<UInt64> = []
    /// IDs handed out and not yet added or forgotten (only these can be cancelled early).
    private var pending: Set<UInt64> = []
    private var nextID: UInt64 = 0
    /// The lowest LSN anyone watches for (so a flush that reaches none skips the scan).
    private var lowest: LSN = .max

    var isEmpty: Bool { watching.isEmpty }

    /// Nothing watched and no bookkeeping left (tests: cancellation leaks nothing).
    var isIdle: Bool { watching.isEmpty && pending.isEmpty && cancelledEarly.isEmpty }

    mutating func makeID() -> UInt64 {
        nextID += 1
        pending.insert(nextID)
        return nextID
    }

    /// Adds a watcher; returns false when it was cancelled already (the caller resumes it with nil).
    mutating func add(id: UInt64, lsn: LSN, continuation: Continuation) -> Bool {
        pending.remove(id)
        if cancelledEarly.remove(id) != nil { return false }
        watching[id] = (lsn, continuation)
        lowest = min(lowest, lsn)
        return true
    }

    /// Drops an ID whose wait ended without a watcher being added (the outcome was known at once).
    mutating func forget(id: UInt64) {
        pending.remove(id)
        cancelledEarly.remove(id)
    }

    /// Cancels a watcher: its wake-up (resumed with nil); or, when it is not added yet, marks it
    /// so that adding it fails; or nothing, when its wait is over already.
    mutating func cancel(id: UInt64) -> Wake? {
        if let entry = watching.removeValue(forKey: id) {
            return Wake(continuation: entry.continuation, outcome: .success(nil))
        }
        if pending.contains(id) { cancelledEarly.insert(id) }
        return nil
    }

    /// The watchers whose LSN `durable` reaches, removed, with their wake-ups.
    mutating func release(upTo durable: LSN, into wakes: inout [Wake]) {
        guard durable >= lowest else { return }
        lowest = .max
        for (id, entry) in watching {
            if entry.lsn <= durable {
                watching.removeValue(forKey: id)
                wakes.append(Wake(continuation: entry.continuation, outcome: .success(durable)))
            } else {
                lowest = min(lowest, entry.lsn)
            }
        }
    }

    /// Every watcher, removed, to be resumed with `durable` whatever it waited for: the log's
    /// end moved back (a cut), and each tailer must look at where it stands.
    mutating func releaseAll(durable: LSN, into wakes: inout [Wake]) {
        for (_, entry) in watching { wakes.append(Wake(continuation: entry.continuation, outcome: .success(durable))) }
        watching.removeAll()
        lowest = .max
    }

    /// Every watcher, removed, to be resumed with `error`.
    mutating func releaseAll(_ error: WALError, into wakes: inout [Wake]) {
        for (_, entry) in watching { wakes.append(Wake(continuation: entry.continuation, outcome: .failure(error))) }
        watching.removeAll()
        lowest = .max
    }
}
