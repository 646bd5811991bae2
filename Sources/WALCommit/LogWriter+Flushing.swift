import WALFormat
import WALIO
import WALSegments

/// The one flush loop, for one flush in flight (the default) and several alike: the holder of
/// the I/O role starts flights while the ``FlightBook`` has an opening and there is something to
/// write, waits for the engine's events outside the lock, and publishes the durable prefix.
extension LogWriter {
    /// Someone waits for, or asked for, an LSN that is not durable yet (lock held).
    var hasDemand: Bool { max(published.highestWaited, requestedLSN) > published.lsn }

    /// Whether a committer that finds the role free should flush in its own thread: always with
    /// one flush in flight; with several only when nobody else waits (a single writer pays no
    /// hand-off; concurrent committers leave the flushing to the flusher thread).
    var flushesInOwnThread: Bool { book.depth == 1 || !hasDemand }

    /// Someone registered a waiter or a request, or a buffer filled (lock held): wakes the
    /// flusher when the role is free, or rings the doorbell when the loop listens for it.
    func demandArrived() {
        lock.assertHeld()
        guard role.isHeld else {
            flusher.wake.signal()
            return
        }
        switch flusher.listening {
        case .no:
            return
        case .anyDemand:
            break
        case .wholeBlock(let notBefore, let covered):
            guard let last = lifecycle.segment?.writer.wholeBlocksLastLSN(notBefore: notBefore), last > covered else { return }
        }
        flusher.ring(engine)
    }

    /// The flusher thread: runs the loop whenever a full buffer is queued or someone waits, and
    /// the role is free; sleeps otherwise.
    func runFlusher() {
        lock.lock()
        defer { unlockAndResume() }
        while !flusher.isStopping {
            if !role.isHeld, case .open(let segment) = lifecycle, segment.writer.hasQueuedJob || hasDemand {
                runFlights(want: nil)
                continue
            }
            wait(on: flusher.wake)
        }
    }

    /// The loop (lock held, role free). `want` is a committer's own LSN when it flushes in its
    /// own thread: it starts flights only while that LSN is not covered, and returns once they
    /// are done; the flusher thread (`want` nil) starts them while anyone waits or a full buffer
    /// is queued. Either way the loop returns only when nothing is in flight, so rollover, cuts,
    /// close and oversized appends (which need the role) never find a flight on disk.
    func runFlights(want: LSN?) {
        lock.assertHeld()
        guard case .open(let segment) = lifecycle else { return }
        let segmentWriter = segment.writer
        role.take()
        book.resume(durable: published.lsn)
        while lifecycle.failure == nil {
            var started: Int?
            let opening = book.opening
            if opening != .none, let job = nextJob(opening, segmentWriter, want: want) {
                started = book.start(job, range: job.offset..<job.end, lastLSN: job.lastLSN, syncs: job.syncs,
                                     selfDurable: job.isSelfDurable, throughWrite: segmentWriter.writesCompleted)
            } else if book.isIdle {
                break
            }
            // With a flight started and room for another, start it under the lock first;
            // otherwise start (if any) and wait in one stretch outside the lock.
            let listening = started != nil && book.opening != .none ? nil : listening(want: want)
            if let listening { flusher.listening = listening }
            unlockAndResume()
            // Up to two events per stretch: a dsync write's write and durability come together.
            var events: (FlightEvent?, FlightEvent?) = (nil, nil)
            var failure: WALError?
            do throws(WALError) {
                if let started, let job = book.flight(started)?.job {
                    try engine.start(segmentWriter.request(for: job), id: started)
                }
                if let listening {
                    events.0 = try engine.nextFlightEvent(armDoorbell: listening != .no)
                    events.1 = engine.readyEvent()
                    recordWritten(events.0, segmentWriter)
                    recordWritten(events.1, segmentWriter)
                }
            } catch {
                failure = error
            }
            lock.lock()
            flusher.stopListening()
            if let failure {
                abandonFlights(segmentWriter, error: failure)
                break
            }
            if let event = events.0 { handle(event, segmentWriter) }
            if let event = events.1 { handle(event, segmentWriter) }
        }
        role.release()
        changed.broadcast()
        if hasDemand || segmentWriter.hasQueuedJob { flusher.wake.signal() }
    }

    /// A write completed: its records go to the live edge (outside the lock, by the role holder),
    /// before the durable LSN is published, so that a woken tailer finds these bytes cached.
    private func recordWritten(_ event: FlightEvent?, _ segmentWriter: SegmentWriter) {
        guard case .written(let id) = event, let job = book.flight(id)?.job, job.dataLength > 0 else { return }
        liveEdge.recordWrite(segment: segmentWriter.firstLSN, offset: job.offset, bytes: segmentWriter.data(of: job))
    }

    /// What the loop listens for while it waits (lock held).
    private func listening(want: LSN?) -> Flusher.Listening {
        guard want == nil else { return .no }  // a committer serves its own LSN only
        switch book.opening {
        case .none: return .no
        case .anyJob: return .anyDemand
        case .wholeBlocks(let notBefore): return .wholeBlock(notBefore: notBefore, covered: book.coveredOrDurable)
        }
    }

    /// The job the opening allows, or nil (lock held). With several flushes in flight, a job
    /// prefers to end at the last block boundary when whole blocks hold records not yet covered,
    /// so that the next job starts on a fresh block and can go out beside it.
    private func nextJob(_ opening: FlightBook<SegmentWriter.Job>.Opening, _ segmentWriter: SegmentWriter,
                         want: LSN?) -> SegmentWriter.Job? {
        let cover = book.coveredOrDurable
        let demand = max(want ?? 0, published.highestWaited, requestedLSN)
        if let want, want <= cover { return nil }  // a committer's own LSN is covered
        if book.depth > 1, demand > cover {
            let notBefore: Int64
            if case .wholeBlocks(let end) = opening { notBefore = end } else { notBefore = 0 }
            if let last = segmentWriter.wholeBlocksLastLSN(notBefore: notBefore), last > cover {
                return segmentWriter.takeWholeBlocks(notBefore: notBefore)
            }
        }
        guard opening == .anyJob, demand > cover || segmentWriter.hasQueuedJob else { return nil }
        if options.maxBatchDelay > .zero && !segmentWriter.hasQueuedJob {
            // Let more commits join this flush (PostgreSQL's commit_delay).
            let (seconds, attoseconds) = options.maxBatchDelay.components
            batchDelay.wait(nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
            guard lifecycle.failure == nil, !lifecycle.isClosed else { return nil }
        }
        let demandNow = max(want ?? 0, published.highestWaited, requestedLSN)
        return segmentWriter.takeJob(demand: demandNow, covered: max(cover, book.coveredOrDurable))
    }

    /// One engine event (lock held).
    private func handle(_ event: FlightEvent, _ segmentWriter: SegmentWriter) {
        switch event {
        case .doorbell:
            return
        case .written(let id):
            guard let job = book.flight(id)?.job else { preconditionFailure("a write completion for unknown flight \(id)") }
            _ = book.written(id, throughWrite: segmentWriter.written(job))
            metrics.flushes.increment()
            changed.broadcast()  // a buffer came back
        case .synced(let id):
            book.synced(id)
            while let flight = book.popDurable() {
                if flight.range.isEmpty { metrics.flushes.increment() }  // an fdatasync alone
                segmentWriter.synced(throughWrite: flight.throughWrite, lsn: flight.lastLSN)
                metrics.fdatasyncs.increment()
                metrics.recordsPerFlush.record(max(0, Int64(clamping: flight.lastLSN) - Int64(clamping: flight.firstRecord) + 1))
            }
            published.publish(segmentWriter.durableLSN)
        }
    }

    /// A flight failed (lock held): the WAL fails, the engine lets the kernel finish with every
    /// buffer (lock released meanwhile), and the buffers come back — or, when that cannot be
    /// established, stay pinned forever.
    private func abandonFlights(_ segmentWriter: SegmentWriter, error: WALError) {
        fail(error)
        unlockAndResume()
        let drained = engine.abandonFlights()
        lock.lock()
        let flights = book.abandon()
        guard drained else {
            segmentWriter.pinBuffersForever()
            logger.error("io_uring failed with flights in flight; their buffers stay allocated", metadata: ["error": "\(error)"])
            return
        }
        for flight in flights where flight.writing { segmentWriter.returnBuffer(of: flight.job) }
    }
}
