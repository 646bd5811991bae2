import Dispatch
import Glibc
import Logging
import Synchronization
import WALFormat
import WALIO
import WALSegments
import WALReplay

/// The write side of a WAL: appends, group commit, rollover and close, safe from any number
/// of threads and tasks.
///
/// ## Group commit
/// Appends copy records into the segment writer's current buffer under one lock, so LSN order
/// is buffer order. Durability is driven by an *I/O role* that one thread holds at a time:
/// the holder takes the next buffer out of the ring as a job, releases the lock, writes it
/// (with fdatasync when someone waits for a record in it), takes the lock again, publishes the
/// new durable LSN and wakes exactly the waiters it covers. Meanwhile other appends fill the
/// other buffer and other committers register as waiters — so while one fdatasync is on disk,
/// the next batch gathers, and it is submitted as soon as the first completes.
///
/// Who holds the role: a committing thread that finds it free takes it and does the flush
/// itself (a single writer then pays no thread hand-off at all, which is what keeps one-writer
/// commit latency at the disk's own: measured, docs/PERFORMANCE.md); when a flush finishes and
/// more commits wait — or a buffer filled up, or only async waiters wait — the flusher thread
/// takes over, so the disk never idles waiting for a sleeping committer to wake. Nothing
/// polls: an idle WAL's flusher sleeps on a condition variable.
///
/// ## Failure
/// A failed write or fdatasync fails every waiter and every later call; the WAL never
/// retries an fdatasync (the kernel may have dropped the dirty pages it failed to write).
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

    private let engine: IOEngine
    private let logger: Logger

    private let lock = ConditionLock()
    /// Broadcast when the I/O role is released, a buffer comes back, an append finishes after
    /// waiting, or the WAL fails or closes.
    private let changed: ConditionLock.Condition
    /// Wakes the flusher thread.
    let flusherWake: ConditionLock.Condition
    /// Never signalled: the role holder sleeps on it for ``WALConfiguration/maxBatchDelay``.
    private let batchDelay: ConditionLock.Condition
    private var flusher: BackgroundThread?

    // Everything below is read and written only with `lock` held (the state the ways to wait
    // in LogWriter+Waiting.swift use is internal for that file, not for anyone else).
    /// The segment lifecycle; nil once closed.
    private var segments: ActiveSegment?
    /// The active segment's writer; nil once closed.
    private var writer: SegmentWriter? { segments?.writer }
    var failure: WALError?
    var isClosed = false
    private var flusherStopping = false
    /// A thread holds the I/O role: it alone may call the engine or swap the writer.
    var ioRoleHeld = false
    var waiters = CommitWaiters()
    /// The highest LSN someone asked to make durable without waiting (``requestDurability(upTo:)``).
    var requestedLSN: LSN = 0
    /// Waiters released under the lock, resumed as soon as the lock is released (a woken
    /// thread should not find the lock still held by its waker).
    private var released: [CommitWaiters.Released] = []
    /// Readers following the durable LSN (live tailing), and their wake-ups due after unlock.
    var watchers = DurabilityWatchers()
    private var watcherWakes: [DurabilityWatchers.Wake] = []
    /// Published copies of the writer's counters (kept after close).
    var lastDurableLSN: LSN = 0
    var lastNextLSN: LSN = 1

    // Lock-free mirrors for readers that check them once per record or per wake-up (live
    // tailers), so that those reads never queue for the lock committers need. Written under
    // the lock, read without it.
    private let durableMirror = Atomic<LSN>(0)
    private let activeSegmentMirror = Atomic<LSN>(0)

    package init(options: Options, segments: ActiveSegment) {
        self.options = options
        self.engine = segments.engine
        self.engineKind = engine.kind
        self.segments = segments
        let writer = segments.writer
        self.logger = options.logger
        self.isDirectIO = writer.file.isDirect
        self.liveEdge = LiveEdgeCache(writerIsDirect: writer.file.isDirect,
                                      capacity: max(LiveEdgeCache.defaultCapacity, options.bufferSize))
        self.metrics = WALMetrics(dimensions: options.metricsDimensions, engine: engine.kind)
        self.changed = ConditionLock.Condition(lock)
        self.flusherWake = ConditionLock.Condition(lock)
        self.batchDelay = ConditionLock.Condition(lock)
        self.lastDurableLSN = writer.durableLSN
        durableMirror.store(writer.durableLSN, ordering: .releasing)
        activeSegmentMirror.store(writer.firstLSN, ordering: .releasing)
        self.lastNextLSN = writer.nextLSN
        flusher = BackgroundThread(name: "wal-flusher") { [self] in runFlusher() }
    }

    deinit {
        engine.shutdown()
    }

    // MARK: Reading state

    /// The flusher thread's kernel id (for tests that check it sleeps when idle).
    package var flusherThreadID: pid_t? { locked { flusher?.threadID } }

    package var nextLSN: LSN { locked { lastNextLSN } }
    /// Neither closed nor failed: the WAL may still change what is on disk.
    package var isUsable: Bool { locked { !isClosed && failure == nil } }
    /// Why the WAL cannot write any more (closed, or ``WALError/failed(_:)``); nil while it can.
    package var unusableReason: WALError? { locked { isClosed ? .closed : failure.map { .failed($0) } } }
    /// No tailer waits and none left bookkeeping behind (for tests).
    package var watchersAreIdle: Bool { locked { watchers.isIdle } }
    package var durableLSN: LSN { durableMirror.load(ordering: .acquiring) }
    /// The active segment's first LSN; 0 once closed.
    package var activeSegmentFirstLSN: LSN { activeSegmentMirror.load(ordering: .acquiring) }

    /// Runs `body` with the active segment's first LSN, under the lock (truncation must not
    /// race a rollover).
    package func withActiveSegment<T>(_ body: (LSN) throws(WALError) -> T) throws(WALError) -> T {
        try locked { () throws(WALError) -> T in
            try body(try usableSegments().writer.firstLSN)
        }
    }

    // MARK: Appending

    /// Appends under the lock. A record that fits in the ring's free space is copied at once;
    /// a larger one waits for the I/O role and is copied holding it, the segment writer writing
    /// full buffers as the record goes through (``SegmentWriter/append(storedType:tenant:vshard:payload:holdingIORole:)``):
    /// either way the record is in the ring in one piece when the lock is released, so records
    /// never interleave.
    package func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> LSN {
        try locked { () throws(WALError) -> LSN in
            while true {
                let segments = try usableSegments()
                if segments.isFull {
                    if ioRoleHeld { wait(on: changed); continue }
                    try withRole { () throws(WALError) in try roll() }
                    continue
                }
                let writer = segments.writer
                let lsn: LSN
                if writer.fits(writer.recordSize(payloadCount: payload.count)) {
                    lsn = try writer.append(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload,
                                            holdingIORole: false)
                } else {
                    if ioRoleHeld { wait(on: changed); continue }
                    liveEdge.invalidate()  // the writes made during this append are not recorded in it
                    do throws(WALError) {
                        lsn = try withRole { () throws(WALError) -> LSN in
                            try writer.append(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload,
                                              holdingIORole: true)
                        }
                    } catch {
                        if case .payloadTooLarge = error { throw error }  // refused before anything was copied
                        fail(error)
                        throw WALError.failed(error)  // as every caller sees a failed write
                    }
                }
                lastNextLSN = writer.nextLSN
                metrics.records.increment()
                metrics.bytes.increment(by: Int64(payload.count))
                if writer.queuedJob != nil && !ioRoleHeld { flusherWake.signal() }
                segments.appended()
                return lsn
            }
        }
    }

    // MARK: The I/O role

    /// One flush, run with the lock held and the role free: takes the next job, writes it
    /// outside the lock, publishes the result. `want` is the caller's own LSN (0 for none);
    /// the job syncs when it covers every LSN anyone waits for.
    func runCycle(want: LSN) {
        lock.assertHeld()
        guard let writer, failure == nil else { return }
        ioRoleHeld = true
        if options.maxBatchDelay > .zero && writer.queuedJob == nil {
            // Let more commits join this flush (PostgreSQL's commit_delay).
            let (seconds, attoseconds) = options.maxBatchDelay.components
            batchDelay.wait(nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        let demand = max(want, waiters.highest, requestedLSN)
        let durable = lastDurableLSN
        let syncs = { (last: LSN) -> Bool in demand > durable && demand <= last }
        guard let job = writer.takeJob(sync: syncs) ?? (demand > durable ? writer.takeSyncOnlyJob() : nil) else {
            ioRoleHeld = false
            return
        }
        let firstRecord = durable + 1
        unlockAndResume()
        var failed: WALError?
        do throws(WALError) {
            try writer.write(job)
            // Before the durable LSN is published: a woken tailer finds these bytes cached.
            if job.dataLength > 0 {
                liveEdge.recordWrite(segment: writer.firstLSN, offset: job.offset, bytes: writer.data(of: job))
            }
        } catch {
            failed = error
        }
        lock.lock()
        ioRoleHeld = false
        metrics.flushes.increment()
        if let failed {
            writer.returnBuffer(of: job)
            fail(failed)
            return
        }
        writer.finish(job)
        if job.sync {
            metrics.fdatasyncs.increment()
            metrics.recordsPerFlush.record(Int64(job.lastLSN) - Int64(firstRecord) + 1)
        }
        publishDurable(writer.durableLSN)
        changed.broadcast()
        if hasDemand || writer.queuedJob != nil { flusherWake.signal() }
    }

    /// Runs `body` holding the role (lock held throughout: for rollover and close, which are
    /// rare and must not interleave with appends). The caller checked that the role is free.
    private func withRole<T>(_ body: () throws(WALError) -> T) throws(WALError) -> T {
        lock.assertHeld()
        precondition(!ioRoleHeld)
        ioRoleHeld = true
        defer {
            ioRoleHeld = false
            changed.broadcast()
            if hasDemand { flusherWake.signal() }
        }
        return try body()
    }

    /// Someone waits for, or asked for, an LSN that is not durable yet.
    private var hasDemand: Bool { max(waiters.highest, requestedLSN) > lastDurableLSN }

    private func publishDurable(_ lsn: LSN) {
        lock.assertHeld()
        guard lsn > lastDurableLSN else { return }
        lastDurableLSN = lsn
        durableMirror.store(lsn, ordering: .releasing)
        if let batch = waiters.release(upTo: lsn) { released.append(batch) }
        if !watchers.isEmpty { watchers.release(upTo: lsn, into: &watcherWakes) }
    }

    /// Runs `body` under the lock, then resumes the waiters it released.
    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { unlockAndResume() }
        return try body()
    }

    private func unlockAndResume() {
        let batches = released
        released = []
        let wakes = watcherWakes
        if !wakes.isEmpty { watcherWakes = [] }
        lock.unlock()
        for batch in batches { batch.resume() }
        for wake in wakes { wake.resume() }
    }

    /// Waits on `condition` (lock held), resuming released waiters first.
    private func wait(on condition: ConditionLock.Condition) {
        lock.assertHeld()
        if !released.isEmpty || !watcherWakes.isEmpty {
            unlockAndResume()
            lock.lock()
            return // state may have changed meanwhile: the caller re-checks before waiting again
        }
        condition.wait()
    }

    /// Makes the WAL refuse further work and fails every waiter (sticky: see the type's docs).
    private func fail(_ error: WALError) {
        lock.assertHeld()
        if failure == nil {
            failure = error
            logger.error("WAL write path failed; refusing further writes", metadata: ["error": "\(error)"])
        }
        if let batch = waiters.releaseAll(outcome: WALError.failed(error)) { released.append(batch) }
        watchers.releaseAll(WALError.failed(error), into: &watcherWakes)
        changed.broadcast()
    }

    /// The segments to write to, or why there are none (closed, failed). Lock held.
    @discardableResult
    func usableSegments() throws(WALError) -> ActiveSegment {
        lock.assertHeld()
        guard !isClosed, let segments else { throw WALError.closed }
        if let failure { throw WALError.failed(failure) }
        return segments
    }

    /// The flusher thread: flushes whenever a full buffer is queued or someone waits, and the
    /// role is free; sleeps otherwise.
    private func runFlusher() {
        lock.lock()
        defer { unlockAndResume() }
        while !flusherStopping {
            if !ioRoleHeld, failure == nil, let writer,
               writer.queuedJob != nil || hasDemand {
                runCycle(want: 0)
                continue
            }
            wait(on: flusherWake)
        }
    }

    // MARK: Rollover

    /// Seals the active segment now and starts a new one, whatever its size (nothing when it
    /// holds no record).
    package func rollSegment() throws(WALError) {
        try locked { () throws(WALError) in
            while true {
                try usableSegments()
                if ioRoleHeld { wait(on: changed); continue }
                return try withRole { () throws(WALError) in try roll() }
            }
        }
    }

    /// Seals the active segment and starts the next (lock and role held), provided it holds a
    /// record (``ActiveSegment/roll()``). A failure to get the next file is reported and
    /// changes nothing: the WAL keeps appending to the active segment and tries again at a
    /// later append. A failure to seal or to fsync the directory fails the WAL.
    private func roll() throws(WALError) {
        lock.assertHeld()
        guard let segments else { throw WALError.closed }
        liveEdge.invalidate()  // the sealing writes below are not recorded in it
        let before = segments.writer
        do throws(ActiveSegment.RolloverFailure) {
            try segments.roll()
        } catch {
            switch error {
            case .fatal(let cause):
                fail(cause)
                throw cause
            case .recoverable(let cause):
                publishDurable(before.durableLSN)  // sealed: everything appended is durable
                throw cause
            }
        }
        publishDurable(before.durableLSN)
        guard segments.writer !== before else { return }
        activeSegmentMirror.store(segments.writer.firstLSN, ordering: .releasing)
        metrics.rollovers.increment()
    }

    // MARK: Close

    /// Makes everything durable, trims the active segment, releases the files and stops the
    /// flusher. Later calls throw ``WALError/closed``; closing twice is harmless.
    package func close() throws(WALError) {
        var outcome: WALError?
        let thread: BackgroundThread? = locked {
            if isClosed { return nil }
            while ioRoleHeld { wait(on: changed) }
            isClosed = true
            ioRoleHeld = true
            defer { ioRoleHeld = false }
            liveEdge.invalidate()
            if let segments {
                self.segments = nil
                activeSegmentMirror.store(0, ordering: .releasing)
                if failure == nil {
                    do throws(WALError) {
                        try segments.seal()
                        publishDurable(segments.writer.durableLSN)
                    } catch {
                        segments.closeWithoutSync()
                        fail(error)
                        outcome = error
                    }
                } else {
                    segments.closeWithoutSync()
                }
            }
            // Waiters still here waited for LSNs that are durable now (released above), or the WAL failed.
            if let batch = waiters.releaseAll(outcome: failure.map { WALError.failed($0) } ?? WALError.closed) {
                released.append(batch)
            }
            watchers.releaseAll(failure.map { WALError.failed($0) } ?? WALError.closed, into: &watcherWakes)
            flusherStopping = true
            flusherWake.signal()
            changed.broadcast()
            defer { flusher = nil }
            return flusher
        }
        if let thread, !thread.isCurrent { thread.join() }
        if let outcome { throw outcome }
    }
}
