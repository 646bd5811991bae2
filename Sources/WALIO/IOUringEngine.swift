import CLiburing
import Glibc
import WALFormat

/// The io_uring engine. How a durable request becomes durable is its ``IOUringSyncMethod``,
/// applied to the durability the request asks for (the engine keeps no history of its own):
///
/// | request | `.adaptive` (default) | `.dsyncWrites` | `.linkedFdatasync` |
/// |---|---|---|---|
/// | ``WriteDurability/none`` | write | `RWF_DSYNC` write | write |
/// | ``WriteDurability/thisWrite`` | `RWF_DSYNC` write | `RWF_DSYNC` write | write → fdatasync |
/// | ``WriteDurability/fileData`` | write → fdatasync | `RWF_DSYNC` write (every earlier write was one too) | write → fdatasync |
/// | empty, ``WriteDurability/fileData`` | fdatasync | nothing (every write was durable) | fdatasync |
///
/// "write → fdatasync" is a write SQE linked (`IOSQE_IO_LINK`) to an fdatasync SQE
/// (`IORING_FSYNC_DATASYNC`). Why adaptive: io_uring always hands fsync to an io-wq worker
/// thread, two extra context switches per commit; on the reference machine that made
/// single-writer commits ~12 % slower than pwrite+fdatasync, while a dsync write matched it.
/// But a dsync write only covers its own range — with FUA it does not flush the device cache —
/// so it cannot vouch for earlier plain writes, and making every write dsync doubled the syncs
/// of streaming workloads (where a buffer fills before each sync point). The segment writer
/// knows which case a request is, and says so in its durability (docs/PERFORMANCE.md).
///
/// A durable request is submitted together with the wait for it (one
/// `io_uring_submit_and_wait`); a plain one is submitted at once.
///
/// One ring per WAL, used by the holder of the I/O role. With one flush in flight the WAL
/// completes each request (``submit(_:)``, ``complete()``) before it submits the next. With
/// several (``start(_:id:)``, ``nextFlightEvent(armDoorbell:)``; `flushesInFlight` above 1 and a
/// kernel with `IORING_OP_POLL_ADD`), a request durable by itself (``WriteDurability/thisWrite``)
/// is an `RWF_DSYNC` write — several of them, of disjoint blocks, may be in flight at once — and
/// any other durable request is a write linked to an fdatasync;
/// the write's and the fdatasync's completions are reported apart (user_data carries the flight,
/// a resubmission count and which of the two), and an eventfd polled by the ring is the
/// doorbell that wakes a wait for completions. Every completion is checked, per flight:
///
/// | completion | meaning | action |
/// |---|---|---|
/// | write, `res` = remaining | done | — |
/// | write, 0 < `res` < remaining | short write (breaks the link: fdatasync gets -ECANCELED) | resubmit the rest, with its fdatasync |
/// | write, -EINTR / -EAGAIN | transient | resubmit, with its fdatasync |
/// | write, other error or 0 | the flush failed | ``WALError/io(operation:errno:path:)`` "write" |
/// | fdatasync, -ECANCELED | its write failed or came up short | follows the write's outcome |
/// | fdatasync, -ECANCELED after a write completed in full | nothing vouches for durability | ``WALError/io(operation:errno:path:)`` "fdatasync" |
/// | fdatasync, other error | the data is not durable | ``WALError/io(operation:errno:path:)`` "fdatasync" |
///
/// The SQ holds at most three entries at once (a write, its fdatasync, the doorbell's poll), far
/// below its size; should it ever be full,
/// the engine submits what is queued and waits for completions instead of failing.
final class IOUringEngine: IOEngine {
    var kind: IOEngineKind { .ioUring }

    private static let entries: UInt32 = 8
    private static let writeTag: UInt64 = 1
    private static let syncTag: UInt64 = 2
    /// The doorbell's poll (several flushes in flight); never a flight's tag.
    private static let doorbellTag: UInt64 = .max

    private let ring: UnsafeMutablePointer<io_uring>
    private var isShutDown = false
    private let syncMethod: IOUringSyncMethod
    /// SQEs are queued but not yet submitted (a sync flush waits for its submission).
    private var unsubmitted = false

    /// The request in flight with one flush in flight (``submit(_:)``).
    private var inFlight: Flight?
    /// Completions still due for the current submission.
    private var expected = 0

    /// Several flushes in flight (``start(_:id:)``): how many at most, 1 when the kernel lacks
    /// the doorbell's poll or every write is a dsync write (``IOUringSyncMethod/dsyncWrites``:
    /// the next write would wait for the previous one's durability anyway).
    private(set) var maxFlushesInFlight: Int
    /// The flights started and not finished, by id.
    private var flights: [Int: Flight] = [:]
    /// Events reaped and not yet handed out.
    private var flightEvents: [FlightEvent] = []
    /// CQEs due for the flights' SQEs (the doorbell's not counted).
    private var flightCompletionsDue = 0
    /// The eventfd ``ringDoorbell()`` writes to; -1 without one.
    private var doorbell: Int32 = -1
    private var doorbellArmed = false
    /// Numbers each fdatasync issued for the crash-state model (``SyscallEvent/syncStarted(path:id:)``).
    private var syncMarker = 0

    /// A request as the ring carries it out: a write (possibly resubmitted in parts) and the
    /// fdatasync linked to it. With one flush in flight it is ``inFlight``; with several, one of
    /// ``flights`` (whose fields below `dsync` only they use).
    private struct Flight {
        var base: UnsafeRawPointer
        var length: Int
        var offset: Int64
        var written = 0
        var file: SegmentFile
        /// An fdatasync SQE follows the write (linked), or stands alone for an empty request.
        var fdatasync: Bool
        /// The write carries RWF_DSYNC (one flush in flight only).
        var dsync = false
        /// The request is durable once it completes.
        var durable: Bool { dsync || fdatasync }
        /// Bumped at each resubmission: the CQEs of an earlier submission's cancelled
        /// fdatasync are recognised and ignored.
        var generation: UInt64 = 0
        var writeDone = false
        var syncCancelled = false
        var syncSucceeded = false
        var marker = 0
    }

    /// Sets up a ring and checks that the kernel supports the two opcodes the engine submits
    /// (write and fsync; reads and fallocate are plain system calls, so a kernel without their
    /// opcodes still runs this engine).
    /// - Throws: ``WALError/engineUnavailable(engine:reason:)`` saying why io_uring cannot run.

    init(syncMethod: IOUringSyncMethod = .adaptive, flushesInFlight: Int = 1) throws(WALError) {
        self.syncMethod = syncMethod
        let pipelined = flushesInFlight > 1 && syncMethod != .dsyncWrites
        maxFlushesInFlight = pipelined ? flushesInFlight : 1
        if let disabled = Self.sysctlDisabled(), disabled != 0 {
            throw WALError.engineUnavailable(engine: "io_uring", reason: "kernel.io_uring_disabled is \(disabled)")
        }
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        // COOP_TASKRUN spares an interrupt per completion; kernels before 5.19 refuse it (EINVAL).
        // Several flights: two SQEs each and the doorbell's, and the CQ twice that.
        let entries = pipelined ? max(Self.entries, UInt32(4 * flushesInFlight)) : Self.entries
        var result = io_uring_queue_init(entries, ring, CLiburing_IORING_SETUP_COOP_TASKRUN)
        if result == -EINVAL && CLiburing_IORING_SETUP_COOP_TASKRUN != 0 {
            result = io_uring_queue_init(entries, ring, 0)
        }
        // From here on the object is fully initialised, so a throw runs deinit: mark the ring
        // released before throwing, or deinit would release it a second time.
        guard result == 0 else {
            ring.deallocate()
            isShutDown = true
            throw WALError.engineUnavailable(engine: "io_uring",
                                             reason: "io_uring_queue_init failed: \(Self.errnoName(-result))")
        }
        guard let probe = io_uring_get_probe_ring(ring) else {
            shutdown()
            throw WALError.engineUnavailable(engine: "io_uring", reason: "the kernel cannot be probed for opcodes")
        }
        defer { io_uring_free_probe(probe) }
        let needed: [(Int32, String)] = [
            (CLiburing_IORING_OP_WRITE, "IORING_OP_WRITE"), (CLiburing_IORING_OP_FSYNC, "IORING_OP_FSYNC"),
        ]
        for (opcode, name) in needed where io_uring_opcode_supported(probe, opcode) == 0 {
            shutdown()
            throw WALError.engineUnavailable(engine: "io_uring", reason: "the kernel does not support \(name)")
        }
        if pipelined {
            if io_uring_opcode_supported(probe, CLiburing_IORING_OP_POLL_ADD) != 0 {
                doorbell = CLiburing_eventfd(0, CLiburing_EFD_NONBLOCK | CLiburing_EFD_CLOEXEC)
            }
            if doorbell < 0 { maxFlushesInFlight = 1 }
        }
    }

    deinit { shutdown() }


    func submit(_ request: WriteRequest) throws(WALError) {
        precondition(inFlight == nil, "one request at a time: complete() the previous one first")
        precondition(flightCompletionsDue == 0, "every flight's completions are reaped before one flush at a time")
        AlignedBuffer.assertAligned(request.bytes, offset: request.offset, direct: request.file.isDirect)
        let empty = request.bytes.isEmpty
        var dsync: Bool
        var fdatasync: Bool
        switch (syncMethod, request.durability) {
        case (.dsyncWrites, _):
            // Every write is its own sync, so nothing is ever left for an fdatasync.
            (dsync, fdatasync) = (!empty, false)
        case (_, .none):
            (dsync, fdatasync) = (false, false)
        case (.adaptive, .thisWrite):
            (dsync, fdatasync) = (!empty, false)
        case (.adaptive, .fileData), (.linkedFdatasync, .thisWrite), (.linkedFdatasync, .fileData):
            (dsync, fdatasync) = (false, true)
        }
        if empty && !fdatasync { return }  // nothing to write, nothing left to make durable
        let flush = Flight(base: request.bytes.baseAddress ?? UnsafeRawPointer(ring), length: request.bytes.count,
                           offset: request.offset, file: request.file, fdatasync: fdatasync, dsync: dsync)
        inFlight = flush
        try queue(flush)
    }

    func complete() throws(WALError) {
        while var flush = inFlight {
            var writeError: Int32?
            var syncError: Int32?
            var resubmit = false
            var cancelledSync = false
            while expected > 0 {
                var (tag, result) = try nextCompletion(flush.file.path)
                expected -= 1
                result = TestHooks.completion(tag == Self.writeTag ? "write" : "fdatasync", flush.file.path, result)
                if tag == Self.writeTag {
                    let remaining = flush.length - flush.written
                    if result == -EINTR || result == -EAGAIN {
                        resubmit = true
                    } else if result < 0 {
                        writeError = -result
                    } else if result == 0 && remaining > 0 {
                        writeError = EIO // no progress: the device took nothing
                    } else {
                        Self.report(flush, count: Int(result))
                        flush.written += Int(result)
                        if Int(result) < remaining { resubmit = true }
                    }
                } else if result == -ECANCELED {
                    cancelledSync = true
                } else if result < 0 {
                    syncError = -result
                }
            }
            // A linked fdatasync is cancelled when its write failed or came up short, and then
            // follows the write (an error, or a resubmission with its fdatasync). Cancelled
            // after a write that completed in full, nothing says the data is durable.
            if cancelledSync && writeError == nil && !resubmit {
                syncError = ECANCELED
            }
            inFlight = flush
            if let writeError {
                inFlight = nil
                throw WALError.io(operation: "write", errno: writeError, path: flush.file.path)
            }
            if let syncError {
                inFlight = nil
                throw WALError.io(operation: "fdatasync", errno: syncError, path: flush.file.path)
            }
            if resubmit {
                try queue(flush)
                continue
            }
            if flush.fdatasync { TestHooks.observe(.sync(path: flush.file.path)) }
            inFlight = nil
        }
    }

    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        io_uring_queue_exit(ring)
        ring.deallocate()
        if doorbell >= 0 { Glibc.close(doorbell) }
    }

    // MARK: Several flushes in flight

    func start(_ request: WriteRequest, id: Int) throws(WALError) {
        precondition(inFlight == nil && maxFlushesInFlight > 1 && flights[id] == nil)
        AlignedBuffer.assertAligned(request.bytes, offset: request.offset, direct: request.file.isDirect)
        // A write durable by itself is an RWF_DSYNC write (it may be one of several in flight);
        // one that must vouch for earlier writes is linked to an fdatasync.
        let dsync = request.durability == .thisWrite && !request.bytes.isEmpty && syncMethod == .adaptive
        var flight = Flight(base: request.bytes.baseAddress ?? UnsafeRawPointer(ring), length: request.bytes.count,
                            offset: request.offset, file: request.file,
                            fdatasync: request.durability != .none && !dsync, dsync: dsync)
        if request.bytes.isEmpty {
            precondition(flight.fdatasync, "an empty flight is an fdatasync")
            flight.writeDone = true
            flight.marker = startSync(flight.file.path)  // covers what was written before now
        }
        if dsync {
            TestHooks.observe(.durableWriteIssued(path: flight.file.path, offset: flight.offset,
                                                  bytes: Array(UnsafeRawBufferPointer(start: flight.base, count: flight.length))))
        }
        flights[id] = flight
        try queueFlight(id, flight)
    }

    func nextFlightEvent(armDoorbell: Bool) throws(WALError) -> FlightEvent {
        while flightEvents.isEmpty {
            if armDoorbell && !doorbellArmed {
                let sqe = try nextSubmissionEntry("io_uring doorbell")
                io_uring_prep_poll_add(sqe, doorbell, CLiburing_POLLIN)
                io_uring_sqe_set_data64(sqe, Self.doorbellTag)
                doorbellArmed = true
                unsubmitted = true
            }
            let path = flights.values.first?.file.path ?? "io_uring"
            let (tag, result) = try rawCompletion(path)
            try handleFlightCompletion(tag: tag, result: result)
        }
        return flightEvents.removeFirst()
    }

    func ringDoorbell() {
        var one: UInt64 = 1
        _ = Glibc.write(doorbell, &one, 8)
    }

    func abandonFlights() -> Bool {
        var drained = true
        let path = flights.values.first?.file.path ?? "io_uring"
        while flightCompletionsDue > 0 {
            // rawCompletion retries EINTR/EAGAIN/EBUSY itself; any other error (the ring is
            // broken, completions were dropped) means the due ones may never be seen, and the
            // kernel may still be reading the buffers: say so rather than hand them back.
            guard let (tag, _) = try? rawCompletion(path) else { drained = false; break }
            if tag == Self.doorbellTag { doorbellRang(); continue }
            flightCompletionsDue -= 1
        }
        flights.removeAll()
        flightEvents.removeAll()
        return drained
    }

    private func startSync(_ path: String) -> Int {
        syncMarker += 1
        TestHooks.observe(.syncStarted(path: path, id: syncMarker))
        return syncMarker
    }

    private func doorbellRang() {
        doorbellArmed = false
        var count: UInt64 = 0
        _ = Glibc.read(doorbell, &count, 8)  // reset the counter (non-blocking)
    }

    /// The bits of a flight id that user_data carries.
    static func tagID(_ id: Int) -> UInt64 { UInt64(id & 0x3FFF_FFFF) }

    /// Queues the rest of flight `id` (its write linked to its fdatasync), submitted with the
    /// next wait. user_data: low 30 bits of id << 33 | generation << 1 | (1 for the fdatasync).
    private func queueFlight(_ id: Int, _ flight: Flight) throws(WALError) {
        let remaining = flight.length - flight.written
        let fd = flight.file.descriptor
        let tag = Self.tagID(id) << 33 | (flight.generation & 0xFFFF_FFFF) << 1
        if remaining > 0 {
            let sqe = try nextSubmissionEntry(flight.file.path)
            io_uring_prep_write(sqe, fd, flight.base + flight.written, UInt32(remaining),
                                UInt64(flight.offset) + UInt64(flight.written))
            io_uring_sqe_set_data64(sqe, tag)
            if flight.dsync {
                sqe.pointee.rw_flags = CLiburing_RWF_DSYNC
            } else if flight.fdatasync {
                sqe.pointee.flags |= CLiburing_IOSQE_IO_LINK
            }
            flightCompletionsDue += 1
        }
        if flight.fdatasync {
            let sqe = try nextSubmissionEntry(flight.file.path)
            io_uring_prep_fsync(sqe, fd, CLiburing_IORING_FSYNC_DATASYNC)
            io_uring_sqe_set_data64(sqe, tag | 1)
            flightCompletionsDue += 1
        }
        unsubmitted = true
    }

    /// Checks one completion of a flight (the table in the type's documentation, per flight)
    /// and turns it into events.
    private func handleFlightCompletion(tag: UInt64, result rawResult: Int32) throws(WALError) {
        if tag == Self.doorbellTag {
            doorbellRang()
            flightEvents.append(.doorbell)
            return
        }
        flightCompletionsDue -= 1
        let isSync = tag & 1 == 1
        // user_data keeps 30 bits of the id; the flights in flight (at most 16, consecutive
        // ids) never share them, so the lookup is by those bits, not by the whole id — which
        // passes 2^30 after about 42 hours at the measured flight rates.
        guard let id = flights.keys.first(where: { Self.tagID($0) == tag >> 33 }), var flight = flights[id],
              (tag >> 1) & 0xFFFF_FFFF == flight.generation & 0xFFFF_FFFF else {
            return  // the cancelled fdatasync of a write that was resubmitted
        }
        let path = flight.file.path
        let result = TestHooks.completion(isSync ? "fdatasync" : "write", path, rawResult)
        if isSync {
            if result == -ECANCELED {
                // Its write failed or came up short (then the write's completion decides), or
                // nothing vouches for the data.
                if flight.writeDone { throw WALError.io(operation: "fdatasync", errno: ECANCELED, path: path) }
                flight.syncCancelled = true
                flights[id] = flight
                return
            }
            if result < 0 { throw WALError.io(operation: "fdatasync", errno: -result, path: path) }
            if !flight.writeDone {
                flight.syncSucceeded = true  // reported once the write's completion is
                flights[id] = flight
                return
            }
            finishSync(id, flight)
            return
        }
        let remaining = flight.length - flight.written
        var resubmit = false
        if result == -EINTR || result == -EAGAIN {
            resubmit = true
        } else if result < 0 {
            throw WALError.io(operation: "write", errno: -result, path: path)
        } else if result == 0 && remaining > 0 {
            throw WALError.io(operation: "write", errno: EIO, path: path)
        } else {
            if flight.dsync {
                TestHooks.observe(.durableWriteCompleted(path: path, offset: flight.offset + Int64(flight.written),
                                                         count: Int(result)))
            } else {
                Self.report(flight, count: Int(result))
            }
            flight.written += Int(result)
            resubmit = flight.written < flight.length
        }
        if resubmit {
            flight.generation += 1
            flight.syncCancelled = false
            flight.syncSucceeded = false
            flights[id] = flight
            try queueFlight(id, flight)
            return
        }
        if flight.syncCancelled { throw WALError.io(operation: "fdatasync", errno: ECANCELED, path: path) }
        flight.writeDone = true
        flightEvents.append(.written(id))
        guard flight.fdatasync else {
            flights[id] = nil
            if flight.dsync { flightEvents.append(.synced(id)) }  // durable as it completed
            return
        }
        // The linked fdatasync starts after this write completed, before the next write is
        // submitted (the caller waits for this event): it covers exactly the writes so far.
        flight.marker = startSync(path)
        if flight.syncSucceeded {
            finishSync(id, flight)
        } else {
            flights[id] = flight
        }
    }

    private func finishSync(_ id: Int, _ flight: Flight) {
        TestHooks.observe(.syncFinished(path: flight.file.path, id: flight.marker))
        flights[id] = nil
        flightEvents.append(.synced(id))
    }

    /// Tells ``TestHooks/observer`` (the crash-state model) what a write completion put in the
    /// file, as the POSIX engine's pwrite does: both engines' files follow the same trace.
    private static func report(_ flush: Flight, count: Int) {
        guard TestHooks.isObserving, count > 0 else { return }
        let bytes = UnsafeRawBufferPointer(start: flush.base + flush.written, count: count)
        let offset = flush.offset + Int64(flush.written)
        // A dsync write is durable for its own range only: the model must not take it for a
        // sync of the whole file.
        TestHooks.observe(flush.dsync ? .writeDurable(path: flush.file.path, offset: offset, bytes: Array(bytes))
                                      : .write(path: flush.file.path, offset: offset, bytes: Array(bytes)))
    }

    // MARK: Ring plumbing

    /// Queues the rest of `flush` (write, linked to fdatasync when it syncs) and submits it.
    private func queue(_ flush: Flight) throws(WALError) {
        let remaining = flush.length - flush.written
        let fd = flush.file.descriptor
        if remaining > 0 {
            let sqe = try nextSubmissionEntry(flush.file.path)
            io_uring_prep_write(sqe, fd, flush.base + flush.written, UInt32(remaining), UInt64(flush.offset) + UInt64(flush.written))
            io_uring_sqe_set_data64(sqe, Self.writeTag)
            if flush.dsync {
                sqe.pointee.rw_flags = CLiburing_RWF_DSYNC
            } else if flush.fdatasync {
                sqe.pointee.flags |= CLiburing_IOSQE_IO_LINK
            }
            expected += 1
        }
        if flush.fdatasync {
            let sqe = try nextSubmissionEntry(flush.file.path)
            io_uring_prep_fsync(sqe, fd, CLiburing_IORING_FSYNC_DATASYNC)
            io_uring_sqe_set_data64(sqe, Self.syncTag)
            expected += 1
        }
        if flush.durable {
            unsubmitted = true // submitted with the wait, in one io_uring_enter
        } else {
            try submit(flush.file.path)
        }
    }

    /// A free SQE; when the queue is full, submits what is queued and reaps completions until one frees.
    private func nextSubmissionEntry(_ path: String) throws(WALError) -> UnsafeMutablePointer<io_uring_sqe> {
        while true {
            if let sqe = io_uring_get_sqe(ring) { return sqe }
            try submit(path)
            var cqe: UnsafeMutablePointer<io_uring_cqe>?
            let result = io_uring_wait_cqe(ring, &cqe)
            if result < 0 && result != -EINTR {
                throw WALError.io(operation: "io_uring_wait_cqe", errno: -result, path: path)
            }
        }
    }

    private func submit(_ path: String) throws(WALError) {
        unsubmitted = false
        while true {
            let result = io_uring_submit(ring)
            if result >= 0 { return }
            if result == -EINTR || result == -EAGAIN || result == -EBUSY { continue }
            throw WALError.io(operation: "io_uring_enter", errno: -result, path: path)
        }
    }

    /// Waits for the next completion of the request in flight and returns its tag and result
    /// (a doorbell left armed by the flights is disarmed on the way).
    private func nextCompletion(_ path: String) throws(WALError) -> (UInt64, Int32) {
        while true {
            let (tag, result) = try rawCompletion(path)
            if tag == Self.doorbellTag { doorbellRang(); continue }
            return (tag, result)
        }
    }

    /// Waits for the next completion and returns its tag and result.
    private func rawCompletion(_ path: String) throws(WALError) -> (UInt64, Int32) {
        if let code = TestHooks.fault("io_uring_wait_cqe", path) {
            throw WALError.io(operation: "io_uring_wait_cqe", errno: code, path: path)
        }
        if unsubmitted {
            while true {
                let result = io_uring_submit_and_wait(ring, 1)
                if result >= 0 { break }
                if result == -EINTR || result == -EAGAIN || result == -EBUSY { continue }
                throw WALError.io(operation: "io_uring_enter", errno: -result, path: path)
            }
            unsubmitted = false
        }
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        while true {
            let result = io_uring_wait_cqe(ring, &cqe)
            if result == 0, let cqe {
                let completion = (cqe.pointee.user_data, cqe.pointee.res)
                io_uring_cqe_seen(ring, cqe)
                return completion
            }
            if result == -EINTR || result == -EAGAIN { continue }
            throw WALError.io(operation: "io_uring_wait_cqe", errno: -result, path: path)
        }
    }

    /// `kernel.io_uring_disabled` (0 allowed, 1 root or group only, 2 disabled); nil where the
    /// kernel predates the switch.
    private static func sysctlDisabled() -> Int? {
        guard let file = fopen("/proc/sys/kernel/io_uring_disabled", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let digits = line.prefix { $0 >= 0x30 && $0 <= 0x39 }.map { UInt8(bitPattern: $0) }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    private static func errnoName(_ code: Int32) -> String {
        let names: [Int32: String] = [ENOSYS: "ENOSYS", EPERM: "EPERM", EACCES: "EACCES", EOPNOTSUPP: "EOPNOTSUPP",
                                      ENOMEM: "ENOMEM", EINVAL: "EINVAL", EMFILE: "EMFILE"]
        return "\(names[code] ?? "errno \(code)") (\(String(cString: strerror(code))))"
    }
}
