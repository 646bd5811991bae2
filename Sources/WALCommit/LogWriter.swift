import Glibc
import Logging
import Synchronization
import WALFormat
import WALIO
import WALSegments
import WALReplay

/// The write side of a WAL: appends, group commit, rollover, cuts and close, safe from any
/// number of threads and tasks. A shell over small parts, each in its own file:
///
/// - appends copy records into the active segment's ring (``SegmentWriter``) under one lock,
///   so LSN order is ring order;
/// - the *I/O role* (``IORole``) is held by one thread at a time, which runs the one flush
///   loop (LogWriter+Flushing.swift) over a ``FlightBook``: it starts flights through the
///   ``FlightEngine``, releases the lock while they are on disk, and publishes the durable
///   prefix (``DurablePublisher``), which wakes exactly the waiters it covers;
/// - the ways to wait (LogWriter+Waiting.swift) either find their LSN durable, flush in their
///   own thread when the role is free (a single writer pays no thread hand-off), or register
///   and are woken; the ``Flusher`` thread takes over when more commits wait or a buffer filled;
/// - rollover and cuts are the ``ActiveSegment``'s, run holding the role; the ``CutLedger``
///   remembers the cuts, so that no commit is acknowledged for a record a cut removed;
/// - the ``WriterLifecycle`` is open, failed or closed. A failed write or fdatasync fails every
///   waiter and every later call: the WAL never retries an fdatasync (the kernel may have
///   dropped the dirty pages it failed to write).
package final class LogWriter: DurabilitySource, @unchecked Sendable {
    /// What group commit needs of the WAL's configuration.
    package struct Options {
        /// ``WALConfiguration/maxBatchDelay``.
        var maxBatchDelay: Duration
        /// ``WALConfiguration/metricsDimensions``.
        var metricsDimensions: [(String, String)]
        /// The ring buffer size (the live-edge cache holds at least one buffer write).
        var bufferSize: Int
        var logger: Logger

        package init(maxBatchDelay: Duration, metricsDimensions: [(String, String)], bufferSize: Int, logger: Logger) {
            self.maxBatchDelay = maxBatchDelay
            self.metricsDimensions = metricsDimensions
            self.bufferSize = bufferSize
            self.logger = logger
        }
    }

    let options: Options
    package let engineKind: IOEngineKind
    package let isDirectIO: Bool
    package let metrics: WALMetrics
    /// The newest written bytes of the active segment, for this process's live tailers.
    package let liveEdge: LiveEdgeCache
    let engine: FlightEngine
    let logger: Logger

    let lock = ConditionLock()
    /// Broadcast when the I/O role is released, a buffer comes back, or the WAL fails or closes.
    let changed: ConditionLock.Condition
    /// Never signalled: the role holder sleeps on it for ``WALConfiguration/maxBatchDelay``.
    let batchDelay: ConditionLock.Condition
    let flusher: Flusher
    let published: DurablePublisher
    let cutLedger = CutLedger()

    // Lock held for everything below; the flight book also by the role holder without it. That
    // discipline is the exclusivity guarantee, so the per-access runtime checks are off
    // (`@exclusivity(unchecked)`: they cost ~40 checks, ~3,000 instructions, per W1 commit).
    @exclusivity(unchecked) var lifecycle: WriterLifecycle
    @exclusivity(unchecked) var role = IORole()
    @exclusivity(unchecked) var book: FlightBook<SegmentWriter.Job>
    /// The highest LSN someone asked to make durable without waiting (``requestDurability(upTo:)``).
    @exclusivity(unchecked) var requestedLSN: LSN = 0
    /// The next LSN to be appended (kept after close).
    @exclusivity(unchecked) var lastNextLSN: LSN
    /// The active segment's first LSN, for lock-free readers; 0 once closed.
    private let activeSegmentMirror = Atomic<LSN>(0)

    package init(options: Options, segment: ActiveSegment, engine: FlightEngine) {
        self.options = options
        self.engine = engine
        self.engineKind = engine.kind
        self.logger = options.logger
        let segmentWriter = segment.writer
        self.isDirectIO = segmentWriter.file.isDirect
        self.liveEdge = LiveEdgeCache(writerIsDirect: segmentWriter.file.isDirect,
                                      capacity: max(LiveEdgeCache.defaultCapacity, options.bufferSize))
        self.metrics = WALMetrics(dimensions: options.metricsDimensions, engine: engine.kind)
        self.changed = ConditionLock.Condition(lock)
        self.batchDelay = ConditionLock.Condition(lock)
        self.flusher = Flusher(lock: lock)
        self.published = DurablePublisher(durable: segmentWriter.durableLSN)
        self.lifecycle = .open(segment)
        self.book = FlightBook(depth: engine.maxFlights, durable: segmentWriter.durableLSN, lastID: TestHooks.firstFlightID)
        self.lastNextLSN = segmentWriter.nextLSN
        activeSegmentMirror.store(segmentWriter.firstLSN, ordering: .releasing)
        flusher.start { [self] in runFlusher() }
    }

    deinit {
        engine.shutdown()
    }

    // MARK: Reading state

    /// The flusher thread's kernel id (for tests that check it sleeps when idle).
    package var flusherThreadID: pid_t? { locked { flusher.threadID } }
    package var nextLSN: LSN { locked { lastNextLSN } }
    /// Neither closed nor failed: the WAL may still change what is on disk.
    package var isUsable: Bool { locked { lifecycle.unusableReason == nil } }
    /// Why the WAL cannot write any more (closed, or ``WALError/failed(_:)``); nil while it can.
    package var unusableReason: WALError? { locked { lifecycle.unusableReason } }
    /// No tailer waits and none left bookkeeping behind (for tests).
    package var watchersAreIdle: Bool { locked { published.watchers.isIdle } }
    package var durableLSN: LSN { published.mirrored }
    /// The active segment's first LSN; 0 once closed.
    package var activeSegmentFirstLSN: LSN { activeSegmentMirror.load(ordering: .acquiring) }
    /// Flushes kept in flight at most.
    var flushesInFlight: Int { book.depth }

    /// Runs `body` with the active segment's first LSN, under the lock (truncation must not
    /// race a rollover).
    package func withActiveSegment<T>(_ body: (LSN) throws(WALError) -> T) throws(WALError) -> T {
        try locked { () throws(WALError) -> T in try body(try lifecycle.usableSegment().writer.firstLSN) }
    }

    // MARK: Appending

    /// Appends under the lock. A record that fits in the ring's free space is copied at once;
    /// a larger one waits for the I/O role and is copied holding it, the segment writer writing
    /// full buffers as the record goes through: either way the record is in the ring in one
    /// piece when the lock is released, so records never interleave.
    package func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> AppendTicket {
        try locked { () throws(WALError) -> AppendTicket in
            while true {
                let segment = try lifecycle.usableSegment()
                guard lastNextLSN <= LSNDomain.last else {
                    throw WALError.invalidArgument("the log has used every LSN up to \(LSNDomain.last)")
                }
                if segment.isFull {
                    if role.isHeld { wait(on: changed); continue }
                    try holdingRole { () throws(WALError) in try roll() }
                    continue
                }
                let segmentWriter = segment.writer
                let lsn: LSN
                if segmentWriter.fits(segmentWriter.recordSize(payloadCount: payload.count)) {
                    lsn = try segmentWriter.append(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload,
                                                   holdingIORole: false)
                } else {
                    if role.isHeld { wait(on: changed); continue }
                    liveEdge.invalidate()  // the writes made during this append are not recorded in it
                    do throws(WALError) {
                        lsn = try holdingRole { () throws(WALError) -> LSN in
                            try segmentWriter.append(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload,
                                                     holdingIORole: true)
                        }
                    } catch {
                        if case .payloadTooLarge = error { throw error }  // refused before anything was copied
                        fail(error)
                        throw WALError.failed(error)  // as every caller sees a failed write
                    }
                }
                lastNextLSN = segmentWriter.nextLSN
                metrics.records.increment()
                metrics.bytes.increment(by: Int64(payload.count))
                if segmentWriter.hasQueuedJob { demandArrived() }
                segment.appended()
                return cutLedger.ticket(lsn)
            }
        }
    }

    // MARK: Rollover

    /// Seals the active segment now and starts a new one, whatever its size (nothing when it
    /// holds no record).
    package func rollSegment() throws(WALError) {
        try locked { () throws(WALError) in
            while true {
                _ = try lifecycle.usableSegment()
                if role.isHeld { wait(on: changed); continue }
                return try holdingRole { () throws(WALError) in try roll() }
            }
        }
    }

    /// ``ActiveSegment/roll()`` (lock and role held). A failure to get the next file is
    /// reported and changes nothing: appends go on in the active segment, and a later append
    /// tries again. A failure to seal or to fsync the directory fails the WAL.
    private func roll() throws(WALError) {
        let segment = try lifecycle.usableSegment()
        liveEdge.invalidate()  // the sealing writes are not recorded in it
        let before = segment.writer
        do throws(ActiveSegment.RolloverFailure) {
            try segment.roll()
        } catch {
            switch error {
            case .fatal(let cause):
                fail(cause)
                throw cause
            case .recoverable(let cause):
                published.publish(before.durableLSN)  // sealed: everything appended is durable
                throw cause
            }
        }
        published.publish(before.durableLSN)
        guard segment.writer !== before else { return }
        activeSegmentMirror.store(segment.writer.firstLSN, ordering: .releasing)
        metrics.rollovers.increment()
    }

    // MARK: Cutting the end

    /// ``CutLedger/generation``: even when no cut is under way; half of it counts the cuts made.
    package var cutGeneration: UInt64 { cutLedger.generation }

    /// The cuts made since the first `count` (a tailer's bookkeeping).
    package func cuts(after count: Int) -> [LogCut] {
        locked { Array(cutLedger.history.dropFirst(count)) }
    }

    /// Cuts the log's end (``ActiveSegment/rewrite(_:)``) with the lock and the role held, so
    /// nothing is appended or flushed meanwhile. Waiters for LSNs the cut removes fail with
    /// ``WALError/truncated(after:)`` (or ``WALError/logReset(to:)``) before the flush that
    /// precedes the cut, so none of them is acknowledged. Tailers are woken to check where they
    /// stand. A failure part-way fails the WAL; the intent on disk makes reopening finish the cut.
    package func rewrite(_ cut: LogCut) throws(WALError) {
        try locked { () throws(WALError) in
            while true {
                _ = try lifecycle.usableSegment()
                if role.isHeld { wait(on: changed); continue }
                break
            }
            if cut.kind == .truncateAfter && cut.lsn >= lastNextLSN - 1 { return }  // nothing above it
            let segment = try lifecycle.usableSegment()
            try holdingRole { () throws(WALError) in
                let removed = cutLedger.begin(cut)
                // A reset removes every record: no waiter still here is acknowledged.
                published.release(cut.kind == .reset ? published.waiters.releaseAll(outcome: removed)
                                                     : published.waiters.release(above: cut.lsn, outcome: removed))
                requestedLSN = min(requestedLSN, cut.lsn)
                liveEdge.invalidate()
                defer {
                    cutLedger.end()
                    published.wakeWatchers()
                }
                do throws(WALError) {
                    try segment.rewrite(cut)
                } catch {
                    fail(error)
                    throw error
                }
                lastNextLSN = segment.writer.nextLSN
                activeSegmentMirror.store(segment.writer.firstLSN, ordering: .releasing)
                // The waiters for kept records: made durable by the flush that preceded the cut.
                published.reset(to: segment.writer.durableLSN)
            }
        }
    }

    // MARK: Close

    /// Makes everything durable, trims the active segment, releases the files and stops the
    /// flusher. Later calls throw ``WALError/closed``; closing twice is harmless.
    package func close() throws(WALError) {
        var outcome: WALError?
        let thread: BackgroundThread? = locked {
            if lifecycle.isClosed { return nil }
            while role.isHeld { wait(on: changed) }
            role.take()
            defer { role.release() }
            liveEdge.invalidate()
            if let segment = lifecycle.segment {
                activeSegmentMirror.store(0, ordering: .releasing)
                if lifecycle.failure == nil {
                    do throws(WALError) {
                        try segment.seal()
                        published.publish(segment.writer.durableLSN)
                    } catch {
                        segment.closeWithoutSync()
                        fail(error)
                        outcome = error
                    }
                } else {
                    segment.closeWithoutSync()
                }
            }
            let failure = lifecycle.failure
            lifecycle = .closed(failure: failure)
            // Waiters still here waited for LSNs that are durable now (released above), or the WAL failed.
            published.failAll(failure.map { WALError.failed($0) } ?? WALError.closed)
            changed.broadcast()
            return flusher.stop()
        }
        if let thread, !thread.isCurrent { thread.join() }
        if let outcome { throw outcome }
    }

    // MARK: Lock and role

    /// Runs `body` under the lock, then resumes the waiters it released.
    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { unlockAndResume() }
        return try body()
    }

    func unlockAndResume() {
        let wakeUps = published.takeWakeUps()
        lock.unlock()
        wakeUps?.resume()
    }

    /// Waits on `condition` (lock held), resuming released waiters first.
    func wait(on condition: ConditionLock.Condition) {
        lock.assertHeld()
        if published.hasWakeUps {
            unlockAndResume()
            lock.lock()
            return  // state may have changed meanwhile: the caller re-checks before waiting again
        }
        condition.wait()
    }

    /// Runs `body` holding the role and the lock throughout (rollover, cuts and oversized
    /// appends, which are rare and must not interleave with appends). The role is free.
    private func holdingRole<T>(_ body: () throws(WALError) -> T) throws(WALError) -> T {
        lock.assertHeld()
        role.take()
        defer {
            role.release()
            changed.broadcast()
            if hasDemand { flusher.wake.signal() }
        }
        return try body()
    }

    /// Makes the WAL refuse further work and fails every waiter (sticky: see the type's docs).
    func fail(_ error: WALError) {
        lock.assertHeld()
        if lifecycle.fail(error) {
            logger.error("WAL write path failed; refusing further writes", metadata: ["error": "\(error)"])
        }
        published.failAll(WALError.failed(lifecycle.failure ?? error))
        changed.broadcast()
    }
}
