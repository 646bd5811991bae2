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
/// One ring per WAL, one request in flight at a time (``submit(_:)`` and ``complete()`` are
/// apart, but the WAL completes each before it submits the next). Every completion is checked:
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
/// The SQ holds at most two entries at once, far below its size; should it ever be full,
/// the engine submits what is queued and waits for completions instead of failing.
final class IOUringEngine: IOEngine {
    var kind: IOEngineKind { .ioUring }

    private static let entries: UInt32 = 8
    private static let writeTag: UInt64 = 1
    private static let syncTag: UInt64 = 2

    private let ring: UnsafeMutablePointer<io_uring>
    private var isShutDown = false
    private let syncMethod: IOUringSyncMethod
    /// SQEs are queued but not yet submitted (a sync flush waits for its submission).
    private var unsubmitted = false

    /// The request in flight, as the ring carries it out.
    private struct Flush {
        var base: UnsafeRawPointer
        var length: Int
        var offset: Int64
        var written = 0
        var file: SegmentFile
        /// The write carries RWF_DSYNC.
        var dsync: Bool
        /// An fdatasync SQE follows the write (linked), or stands alone for an empty request.
        var fdatasync: Bool
        /// The request is durable once this flush completes.
        var durable: Bool { dsync || fdatasync }
    }
    private var inFlight: Flush?
    /// Completions still due for the current submission.
    private var expected = 0

    /// Sets up a ring and checks that the kernel supports the two opcodes the engine submits
    /// (write and fsync; reads and fallocate are plain system calls, so a kernel without their
    /// opcodes still runs this engine).
    /// - Throws: ``WALError/engineUnavailable(engine:reason:)`` saying why io_uring cannot run.

    init(syncMethod: IOUringSyncMethod = .adaptive) throws(WALError) {
        self.syncMethod = syncMethod
        if let disabled = Self.sysctlDisabled(), disabled != 0 {
            throw WALError.engineUnavailable(engine: "io_uring", reason: "kernel.io_uring_disabled is \(disabled)")
        }
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        // COOP_TASKRUN spares an interrupt per completion; kernels before 5.19 refuse it (EINVAL).
        var result = io_uring_queue_init(Self.entries, ring, CLiburing_IORING_SETUP_COOP_TASKRUN)
        if result == -EINVAL && CLiburing_IORING_SETUP_COOP_TASKRUN != 0 {
            result = io_uring_queue_init(Self.entries, ring, 0)
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
    }

    deinit { shutdown() }


    func submit(_ request: WriteRequest) throws(WALError) {
        precondition(inFlight == nil, "one request at a time: complete() the previous one first")
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
        let flush = Flush(base: request.bytes.baseAddress ?? UnsafeRawPointer(ring), length: request.bytes.count,
                          offset: request.offset, file: request.file, dsync: dsync, fdatasync: fdatasync)
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
    }

    /// Tells ``TestHooks/observer`` (the crash-state model) what a write completion put in the
    /// file, as the POSIX engine's pwrite does: both engines' files follow the same trace.
    private static func report(_ flush: Flush, count: Int) {
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
    private func queue(_ flush: Flush) throws(WALError) {
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

    /// Waits for the next completion and returns its tag and result.
    private func nextCompletion(_ path: String) throws(WALError) -> (UInt64, Int32) {
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
