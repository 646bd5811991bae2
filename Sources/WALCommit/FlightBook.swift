import WALFormat

/// The flush loop's ledger of flights: which are in flight, which blocks each writes, when the
/// next may start, and how completions in any order become the durable prefix. A value type
/// with no locks and no system calls, so every order of events can be tested on its own
/// (`FlightBookTests`); the WAL's one flush loop (``LogWriter``) drives it, with depth 1 (one
/// flush at a time, the default) or more (``WALConfiguration/flushesInFlight``).
///
/// The rules, each asserted twice — where the event happens and over the whole book after it
/// (``checkInvariants()``), as TigerBeetle pairs its assertions:
/// 1. Two writes in flight never cover one block: two writes of one block have no defined order
///    on the device. A write may start beside others only past their end (``Opening/wholeBlocks(notBefore:)``).
/// 2. A write that is not durable by itself (a plain write, or one linked to an fdatasync)
///    starts only when no other write is in flight, and nothing starts beside it: its
///    fdatasync then covers every earlier write, so its durability marks every earlier flight
///    durable too. Only writes durable by themselves (`RWF_DSYNC`, own range only) share the device.
/// 3. The durable LSN never passes a flight that is not durable: flights leave the book as a
///    prefix (``popDurable()``), so the durable LSN stays a prefix of the log whatever order
///    completions arrive in.
struct FlightBook<Job> {
    /// One flight: a job, its write, and how it becomes durable.
    struct Flight {
        let id: Int
        let job: Job
        /// The blocks its write covers (empty for an fdatasync alone).
        let range: Range<Int64>
        /// The last record it makes durable (when it ``syncs``).
        let lastLSN: LSN
        /// The first record not durable or covered when it started (for the records-per-flush metric).
        let firstRecord: LSN
        /// It must be durable when it completes (else it is a plain write, covered by a later one).
        let syncs: Bool
        /// Its write is durable by itself and covers its own range only.
        let selfDurable: Bool
        /// Its write completed (an fdatasync alone has none).
        fileprivate(set) var wrote: Bool
        /// The writes completed when its fdatasync was issued (all of which it covers).
        fileprivate(set) var throughWrite: Int
        /// Durable: by itself, or covered by a later flight's fdatasync.
        fileprivate(set) var durable = false

        /// Its write is still on disk.
        var writing: Bool { !wrote }
    }

    /// What may start now.
    enum Opening: Equatable {
        /// Nothing: the book is full (``inEngine`` is the depth), or a write that must go alone is in flight.
        case none
        /// Any job (no write is in flight).
        case anyJob
        /// Only a write durable by itself of whole blocks at or after `notBefore` (the end of
        /// every write in flight).
        case wholeBlocks(notBefore: Int64)
    }

    /// The most flights at once.
    let depth: Int
    /// The flights not yet durable (or, for plain writes, not yet written), oldest first.
    private(set) var flights: [Flight] = []
    /// Flights whose durability event the engine has still to report: one covered by a later
    /// fdatasync leaves ``flights`` early, but the loop must not stop before it is reaped.
    private var syncsDue: [Int] = []
    /// The highest LSN a started flight makes durable.
    private(set) var covered: LSN
    /// The durable prefix: every record up to it is durable.
    private(set) var durable: LSN
    /// The last flight id handed out.
    private(set) var lastID: Int

    init(depth: Int, durable: LSN, lastID: Int = 0) {
        precondition(depth >= 1)
        self.depth = depth
        self.durable = durable
        self.covered = durable
        self.lastID = lastID
        flights.reserveCapacity(depth)
        syncsDue.reserveCapacity(depth)
    }

    /// Nothing in flight and no event due: the loop may stop.
    var isIdle: Bool { flights.isEmpty && syncsDue.isEmpty }
    /// The flights the engine still holds: those in ``flights``, and those a later fdatasync
    /// covered (they left ``flights``) whose own fdatasync the engine has yet to reap. These
    /// count against the depth: the engine keeps at most that many.
    var inEngine: Int { flights.count + syncsDue.count { id in !flights.contains { $0.id == id } } }
    /// A write is on disk.
    var writing: Bool { flights.contains { $0.writing } }
    /// What a flight started now makes durable from: everything up to it is covered.
    var coveredOrDurable: LSN { max(covered, durable) }

    var opening: Opening {
        guard inEngine < depth else { return .none }
        var end: Int64 = 0
        var anyWriting = false
        for flight in flights where flight.writing {
            if !flight.selfDurable { return .none }  // rule 2: it goes alone
            anyWriting = true
            end = max(end, flight.range.upperBound)
        }
        return anyWriting ? .wholeBlocks(notBefore: end) : .anyJob
    }

    /// The flight `id`, if it is in the book.
    func flight(_ id: Int) -> Flight? { flights.first { $0.id == id } }

    /// A new run of the loop (the book is idle): the durable prefix is `durable` now (rollover
    /// and cuts move it between runs).
    mutating func resume(durable: LSN) {
        precondition(isIdle, "the book is resumed with flights in it")
        self.durable = durable
        covered = durable
    }

    /// Starts a flight and returns its id. `throughWrite` is the number of writes completed
    /// now (what an fdatasync alone covers).
    mutating func start(_ job: Job, range: Range<Int64>, lastLSN: LSN, syncs: Bool, selfDurable: Bool,
                        throughWrite: Int) -> Int {
        switch opening {
        case .none:
            preconditionFailure("a flight started while none may")
        case .anyJob:
            break
        case .wholeBlocks(let notBefore):
            // Rules 1 and 2, where they apply: beside other writes, only a write durable by itself, past their end.
            precondition(selfDurable && syncs && range.lowerBound >= notBefore, "a flight overlapping the writes in flight")
        }
        lastID += 1
        let hasWrite = !range.isEmpty
        flights.append(Flight(id: lastID, job: job, range: range, lastLSN: lastLSN, firstRecord: coveredOrDurable + 1,
                              syncs: syncs, selfDurable: selfDurable && hasWrite, wrote: !hasWrite,
                              throughWrite: hasWrite ? 0 : throughWrite))
        if syncs {
            covered = max(covered, lastLSN)
            syncsDue.append(lastID)
        }
        checkInvariants()
        return lastID
    }

    /// Flight `id`'s write completed; `throughWrite` is the number of writes completed now,
    /// which its fdatasync (issued now) covers. Returns the flight (a plain write leaves the book).
    mutating func written(_ id: Int, throughWrite: Int) -> Flight {
        guard let index = flights.firstIndex(where: { $0.id == id }), flights[index].writing else {
            preconditionFailure("a write completion for flight \(id), which is not writing")
        }
        flights[index].wrote = true
        flights[index].throughWrite = throughWrite
        let flight = flights[index]
        if !flight.syncs { flights.remove(at: index) }
        checkInvariants()
        return flight
    }

    /// Flight `id` is durable: by itself (its own range), or by its fdatasync, which covers every
    /// earlier flight too (rule 2: none was writing when its write started). Collect what became
    /// durable with ``popDurable()``.
    mutating func synced(_ id: Int) {
        guard let due = syncsDue.firstIndex(of: id) else { preconditionFailure("a durability event for flight \(id), which is not due") }
        syncsDue.remove(at: due)
        guard let index = flights.firstIndex(where: { $0.id == id }) else {
            // A later fdatasync completed first and covered this flight: it has left the book.
            precondition(flights.first.map { id < $0.id } ?? true, "flight \(id) is unknown")
            return
        }
        precondition(flights[index].syncs && !flights[index].writing, "flight \(id) durable before its write completed")
        if flights[index].selfDurable {
            flights[index].durable = true
        } else {
            for earlier in 0...index {
                precondition(!flights[earlier].writing, "an fdatasync covering a write still on disk")
                flights[earlier].durable = true
            }
        }
        checkInvariants()
    }

    /// The oldest flight when it is durable, removed from the book; the durable prefix moves
    /// to its last record. Nil when the oldest flight is not durable (or there is none).
    mutating func popDurable() -> Flight? {
        guard let first = flights.first, first.durable else { return nil }
        flights.removeFirst()
        // Rule 3, where it applies: only the oldest flight's records join the prefix.
        precondition(first.firstRecord <= durable + 1, "a durable prefix with a gap before flight \(first.id)")
        durable = max(durable, first.lastLSN)
        checkInvariants()
        return first
    }

    /// After a failure: every flight, which the book forgets (the caller returns the buffers
    /// of those still writing, once the engine has abandoned them).
    mutating func abandon() -> [Flight] {
        let all = flights
        flights.removeAll()
        syncsDue.removeAll()
        return all
    }

    /// The three rules over the whole book (debug builds).
    func checkInvariants() {
        #if DEBUG
        let writes = flights.filter(\.writing)
        for (i, a) in writes.enumerated() {
            for b in writes[(i + 1)...] {
                // Rule 1: no two writes in flight share a block.
                precondition(!a.range.overlaps(b.range), "flights \(a.id) and \(b.id) write one block at once")
            }
            // Rule 2: a write not durable by itself is the only write in flight.
            precondition(a.selfDurable || writes.count == 1, "flight \(a.id) is not alone in flight")
        }
        for flight in flights where flight.syncs && !flight.durable {
            // Rule 3: the durable prefix stops before every flight that is not durable.
            precondition(durable < flight.firstRecord, "the durable LSN \(durable) passed flight \(flight.id)")
        }
        precondition(inEngine <= depth, "more flights in the engine than the depth")
        #endif
    }
}
