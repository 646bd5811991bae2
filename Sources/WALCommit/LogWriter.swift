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
/// ## Several flushes in flight
/// With ``WALConfiguration/flushesInFlight`` above 1 (io_uring), a committer flushes in its own
/// thread only when nobody else waits (one flush, as above); otherwise the flusher thread holds
/// the role and runs a pipeline (``runPipeline()``). A flight durable by itself (one `RWF_DSYNC`
/// write, nothing unsynced before it) may share the device with others of its kind as long as
/// no two touch one block: the pipeline prefers to end a flight at the last block boundary, so
/// that the next one starts on a fresh block and need not wait for it. Any other flight (a plain
/// write, or a write linked to an fdatasync) goes out alone, so its fdatasync covers every
/// earlier write. The durable LSN advances over the prefix of flights that are durable, whatever
/// order they complete in. Committers that register while the flusher waits ring its doorbell
/// (``IOEngine/ringDoorbell()``) when a flight could start. docs/ARCHITECTURE.md has the rules.
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
    /// Flushes kept in flight: ``WALConfiguration/flushesInFlight`` as the engine allows (1 on POSIX).
    let flushesInFlight: Int
    /// What new demand does while the pipeline's flusher waits for completions (it would
    /// otherwise see the demand only at the next completion). Lock held.
    private var listening = Listening.no
    private var doorbellRung = false
    /// Numbers the pipeline's flights (role holder only).
    private var lastFlightID = TestHooks.firstFlightID

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
    /// Twice the number of cuts (``rewrite(_:)``) begun, plus one while one is under way: a
    /// tailer that reads it before and after reading a record knows whether a cut came between.
    private let cutGenerationMirror = Atomic<UInt64>(0)
    /// Every cut made, in order (index *i* is the cut that took the generation to 2(*i*+1)).
    private(set) var cutHistory: [LogCut] = []
    /// The lowest LSN that the cuts made so far leave meaning the record it named: below it, a
    /// reset (or a cut below the first retained record) removed every record, with this error.
    private(set) var cutFloor: (lsn: LSN, error: WALError)?

    package init(options: Options, segments: ActiveSegment) {
        self.options = options
        self.engine = segments.engine
        self.engineKind = engine.kind
        self.flushesInFlight = engine.maxFlushesInFlight
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
    package func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> AppendTicket {
        try locked { () throws(WALError) -> AppendTicket in
            while true {
                let segments = try usableSegments()
                guard lastNextLSN <= LSNDomain.last else {
                    throw WALError.invalidArgument("the log has used every LSN up to \(LSNDomain.last)")
                }
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
                if writer.queuedJob != nil { demandArrived() }
                segments.appended()
                return AppendTicket(lsn: lsn, cuts: cutHistory.count)
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
            metrics.recordsPerFlush.record(Int64(clamping: job.lastLSN) - Int64(clamping: firstRecord) + 1)
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

    /// Whether a committer that finds the role free should flush in its own thread: always
    /// with one flush in flight; with several only when nobody else waits (a single writer pays
    /// no hand-off; concurrent committers leave the flushing to the flusher's pipeline).
    var flushesInOwnThread: Bool { flushesInFlight == 1 || !hasDemand }

    /// Someone registered a waiter or a request, or a buffer filled (lock held): wakes the
    /// flusher when the role is free, or rings the pipeline's doorbell when it waits for
    /// fdatasyncs with no write in flight (it would otherwise see the demand only at the next
    /// completion).
    func demandArrived() {
        lock.assertHeld()
        if !ioRoleHeld {
            flusherWake.signal()
            return
        }
        guard !doorbellRung else { return }
        switch listening {
        case .no:
            return
        case .anyDemand:
            break
        case .wholeBlock(let notBefore, let covered):
            guard let last = writer?.wholeBlocksLastLSN(notBefore: notBefore), last > covered else { return }
        }
        doorbellRung = true
        engine.ringDoorbell()
    }

    /// One flight of the pipeline: a job, its write, and how it becomes durable (a write
    /// durable by itself, or an fdatasync linked to the write).
    private struct Flight {
        let id: Int
        let job: SegmentWriter.Job
        /// The first record not durable when it was taken (for the records-per-flush metric).
        let firstRecord: LSN
        /// Its write completed (a sync alone has none).
        var wrote: Bool
        /// The writes completed when its fdatasync was issued (all of which it covers).
        var throughWrite = 0
        /// Durable: its own write durable by itself completed, or an fdatasync covered it. Its
        /// records are published once every earlier flight is durable too.
        var durable = false
        /// Its write is durable by itself (`RWF_DSYNC`): it may share the device with other
        /// such writes of disjoint blocks. Any other write goes out alone.
        var isSelfDurable: Bool { job.durability == .thisWrite && job.length > 0 }
        /// Where its write ends (zeros written ahead included): no later write may start below.
        var end: Int64 { job.offset + Int64(job.length) }
    }

    /// What new demand should do while the pipeline waits for completions (lock held).
    enum Listening {
        /// Nothing: the pipeline cannot start a flight now.
        case no
        /// Ring the doorbell: no write is in flight, any demand starts one.
        case anyDemand
        /// Ring it once the ring holds a whole block, starting at or after `notBefore`, that a
        /// write durable by itself can take beside the ones in flight, with a record above
        /// `covered` (what the flights in flight make durable).
        case wholeBlock(notBefore: Int64, covered: LSN)
    }

    /// The flusher's pipeline (lock held, role free, more than one flush in flight allowed):
    /// starts flights while fewer than ``flushesInFlight`` are out, reaps their writes' and
    /// fdatasyncs' completions apart, and publishes the durable LSN as the prefix of flights
    /// that are durable grows; returns when nothing is in flight and nothing more is due.
    ///
    /// Which flight may start: with no write in flight, the next job in file order (as with one
    /// flush; preferring to end it at the last block boundary when a whole block holds records
    /// not yet covered, so that the next one need not wait for it). With writes in flight that
    /// are each durable by themselves, another such write of the ring's whole blocks, provided
    /// its first block lies past every write in flight (``SegmentWriter/takeWholeBlocks(notBefore:)``);
    /// the partial block after it waits for a later flight. Anything else waits until no write
    /// is in flight. Holds the role throughout, so rollover, close and oversized appends (which
    /// need it) find nothing in flight.
    private func runPipeline() {
        lock.assertHeld()
        guard let writer, failure == nil else { return }
        ioRoleHeld = true
        var flights: [Flight] = []  // oldest first
        // Flights whose durability event is still due from the engine: one covered by a later
        // fdatasync leaves `flights` early, but the pipeline must not return (and let one
        // flush at a time use the ring) before its fdatasync's completion has been reaped.
        var syncsDue = Set<Int>()
        var covered = lastDurableLSN  // the highest LSN a started flight makes durable
        while failure == nil {
            let writing = flights.contains { !$0.wrote }
            let aloneInFlight = flights.contains { !$0.wrote && !$0.isSelfDurable }
            let notBefore = flights.lazy.filter { !$0.wrote }.map(\.end).max() ?? 0
            if flights.count < flushesInFlight && !aloneInFlight {
                if options.maxBatchDelay > .zero && !writing && writer.queuedJob == nil && hasDemand {
                    let (seconds, attoseconds) = options.maxBatchDelay.components
                    batchDelay.wait(nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
                }
                let demand = max(waiters.highest, requestedLSN)
                let cover = max(covered, lastDurableLSN)
                let syncs = { (last: LSN) -> Bool in demand > cover && demand <= last }
                var job: SegmentWriter.Job?
                if demand > cover, let last = writer.wholeBlocksLastLSN(notBefore: notBefore), last > cover {
                    job = writer.takeWholeBlocks(notBefore: notBefore)
                }
                if job == nil && !writing && (writer.queuedJob != nil || demand > cover) {
                    job = writer.takeJob(sync: syncs) ?? (demand > cover ? writer.takeSyncOnlyJob() : nil)
                }
                if let job {
                    lastFlightID += 1
                    var flight = Flight(id: lastFlightID, job: job, firstRecord: cover + 1, wrote: job.length == 0)
                    if job.length == 0 { flight.throughWrite = writer.writesCompleted }
                    if job.sync {
                        covered = max(covered, job.lastLSN)
                        syncsDue.insert(flight.id)
                    }
                    flights.append(flight)
                    unlockAndResume()
                    var failed: WALError?
                    do throws(WALError) { try writer.start(job, id: flight.id) } catch { failed = error }
                    lock.lock()
                    if let failed { abandon(flights, writer: writer, error: failed); break }
                    continue
                }
            }
            if flights.isEmpty && syncsDue.isEmpty { break }
            listening = flights.count >= flushesInFlight || aloneInFlight ? .no
                : writing ? .wholeBlock(notBefore: notBefore, covered: max(covered, lastDurableLSN)) : .anyDemand
            let armDoorbell: Bool
            if case .no = listening { armDoorbell = false } else { armDoorbell = true }
            unlockAndResume()
            var event = FlightEvent.doorbell
            var failed: WALError?
            do throws(WALError) { event = try engine.nextFlightEvent(armDoorbell: armDoorbell) } catch { failed = error }
            if case .written(let id) = event, let flight = flights.first(where: { $0.id == id }), flight.job.dataLength > 0 {
                // Before the durable LSN is published: a woken tailer finds these bytes cached.
                liveEdge.recordWrite(segment: writer.firstLSN, offset: flight.job.offset, bytes: writer.data(of: flight.job))
            }
            lock.lock()
            listening = .no
            doorbellRung = false
            if let failed { abandon(flights, writer: writer, error: failed); break }
            switch event {
            case .doorbell:
                continue
            case .written(let id):
                guard let index = flights.firstIndex(where: { $0.id == id }) else { preconditionFailure("unknown flight") }
                flights[index].wrote = true
                flights[index].throughWrite = writer.written(flights[index].job)
                metrics.flushes.increment()
                // A plain write is covered by the next fdatasync (which goes out after it).
                if !flights[index].job.sync { flights.remove(at: index) }
                changed.broadcast()  // a buffer came back
            case .synced(let id):
                syncsDue.remove(id)
                guard let index = flights.firstIndex(where: { $0.id == id }) else {
                    // A later fdatasync completed first and covered this flight: published already.
                    precondition(flights.first.map { id < $0.id } ?? true, "unknown flight")
                    continue
                }
                if flights[index].isSelfDurable {
                    flights[index].durable = true
                } else {
                    // An fdatasync covers every write completed before it was issued: every
                    // earlier flight's (none was in flight when this one's write started).
                    for earlier in 0...index { flights[earlier].durable = true }
                }
                while let first = flights.first, first.durable {
                    let flight = flights.removeFirst()
                    if flight.job.length == 0 { metrics.flushes.increment() }
                    writer.synced(throughWrite: flight.throughWrite, lsn: flight.job.lastLSN)
                    metrics.fdatasyncs.increment()
                    metrics.recordsPerFlush.record(max(0, Int64(clamping: flight.job.lastLSN) - Int64(clamping: flight.firstRecord) + 1))
                }
                publishDurable(writer.durableLSN)
            }
        }
        ioRoleHeld = false
        changed.broadcast()
    }

    /// A flight failed: the WAL fails, the kernel is let finish with every buffer, and the
    /// buffers come back (lock held; released while waiting for the kernel).
    private func abandon(_ flights: [Flight], writer: SegmentWriter, error: WALError) {
        fail(error)
        unlockAndResume()
        let drained = engine.abandonFlights()
        lock.lock()
        guard drained else {
            // The kernel may still read them: the WAL has failed, so no buffer is needed again.
            writer.pinBuffersForever()
            logger.error("io_uring failed with flights in flight; their buffers stay allocated", metadata: ["error": "\(error)"])
            return
        }
        for flight in flights where !flight.wrote { writer.returnBuffer(of: flight.job) }
    }

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
                if flushesInFlight > 1 { runPipeline() } else { runCycle(want: 0) }
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

    // MARK: Cutting the end

    /// ``cutGenerationMirror``: even when no cut is under way; half of it counts the cuts made.
    package var cutGeneration: UInt64 { cutGenerationMirror.load(ordering: .sequentiallyConsistent) }

    /// The cuts made since the first `count` (a tailer's bookkeeping).
    package func cuts(after count: Int) -> [LogCut] {
        locked { Array(cutHistory.dropFirst(count)) }
    }

    /// Cuts the log's end (``LogCut``) with the lock and the role held, so nothing is appended
    /// or flushed meanwhile. Waiters for LSNs the cut removes fail with
    /// ``WALError/truncated(after:)`` (or ``WALError/logReset(to:)``) before the flush that
    /// precedes the cut, so none of them is acknowledged; the records still buffered are
    /// written and then cut off with the rest. Tailers are woken to check where they stand.
    /// A failure part-way fails the WAL; the intent on disk makes reopening finish the cut.
    package func rewrite(_ cut: LogCut) throws(WALError) {
        try locked { () throws(WALError) in
            while true {
                try usableSegments()
                if ioRoleHeld { wait(on: changed); continue }
                break
            }
            if cut.kind == .truncateAfter && cut.lsn >= lastNextLSN - 1 { return }  // nothing above it
            let segments = try usableSegments()
            try withRole { () throws(WALError) in
                let removed = cut.kind == .reset ? WALError.logReset(to: cut.lsn) : WALError.truncated(after: cut.lsn)
                // A reset removes every record: no waiter still here is acknowledged.
                let failed = cut.kind == .reset ? waiters.releaseAll(outcome: removed)
                                                : waiters.release(above: cut.lsn, outcome: removed)
                if let batch = failed { released.append(batch) }
                if cut.kind == .reset {
                    cutFloor = (cut.lsn + 1, removed)
                } else if let floor = cutFloor, cut.lsn + 1 < floor.lsn {
                    cutFloor = (cut.lsn + 1, removed)
                }
                requestedLSN = min(requestedLSN, cut.lsn)
                liveEdge.invalidate()
                cutGenerationMirror.add(1, ordering: .sequentiallyConsistent)  // odd: under way
                cutHistory.append(cut)
                defer {
                    cutGenerationMirror.add(1, ordering: .sequentiallyConsistent)
                    watchers.releaseAll(durable: lastDurableLSN, into: &watcherWakes)
                }
                do throws(WALError) {
                    try segments.rewrite(cut)
                } catch {
                    fail(error)
                    throw error
                }
                let writer = segments.writer
                lastNextLSN = writer.nextLSN
                lastDurableLSN = writer.durableLSN
                durableMirror.store(writer.durableLSN, ordering: .releasing)
                activeSegmentMirror.store(writer.firstLSN, ordering: .releasing)
                // The waiters for kept records: made durable by the flush that preceded the cut.
                if let batch = waiters.release(upTo: lastDurableLSN) { released.append(batch) }
            }
        }
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
