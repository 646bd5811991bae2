import CLiburing
import Glibc
import WALFormat

/// The ring itself: liburing's `io_uring`, set up and probed, fed with SQEs and reaped of
/// CQEs, plus the eventfd doorbell a waiting reaper can be woken by. It knows nothing of
/// flights or durability (``IOUringEngine`` does); every pointer into the ring lives here.
///
/// Queued SQEs go to the kernel with the next wait (``completion(_:)``: one
/// `io_uring_submit_and_wait`), so a write and the wait for it cost one `io_uring_enter`.
/// Should the SQ ever be full, the ring submits what is queued and waits for a completion
/// instead of failing.
final class IOUringRing {
    private let ring: UnsafeMutablePointer<io_uring>
    private var isShutDown = false
    /// SQEs are queued but not yet submitted.
    @exclusivity(unchecked) private var unsubmitted = false
    /// The eventfd ``ringDoorbell()`` writes to; -1 without one.
    private var doorbell: Int32 = -1

    /// Sets up a ring of `entries` SQEs and checks that the kernel supports the opcodes the
    /// engine submits (write and fsync; reads and fallocate are plain system calls). With
    /// `doorbell`, also an eventfd polled through the ring (`IORING_OP_POLL_ADD`), if the
    /// kernel supports the poll (``hasDoorbell``).
    /// - Throws: ``WALError/engineUnavailable(engine:reason:)`` saying why io_uring cannot run.
    init(entries: UInt32, doorbell wantsDoorbell: Bool) throws(WALError) {
        if let disabled = Self.sysctlDisabled(), disabled != 0 {
            throw WALError.engineUnavailable(engine: "io_uring", reason: "kernel.io_uring_disabled is \(disabled)")
        }
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        // COOP_TASKRUN spares an interrupt per completion; kernels before 5.19 refuse it (EINVAL).
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
        if wantsDoorbell && io_uring_opcode_supported(probe, CLiburing_IORING_OP_POLL_ADD) != 0 {
            doorbell = CLiburing_eventfd(0, CLiburing_EFD_NONBLOCK | CLiburing_EFD_CLOEXEC)
        }
    }

    deinit { shutdown() }

    /// The doorbell exists (asked for, and the kernel can poll it through the ring).
    var hasDoorbell: Bool { doorbell >= 0 }

    /// Queues a write of `count` bytes at `offset`, tagged `tag`: an `RWF_DSYNC` write with
    /// `dsync`, linked (`IOSQE_IO_LINK`) to the SQE queued next with `linked`.
    func queueWrite(_ fd: Int32, _ base: UnsafeRawPointer, count: Int, offset: Int64, tag: UInt64, dsync: Bool,
                    linked: Bool, path: @autoclosure () -> String) throws(WALError) {
        let sqe = try nextSubmissionEntry(path())
        io_uring_prep_write(sqe, fd, base, UInt32(count), UInt64(offset))
        io_uring_sqe_set_data64(sqe, tag)
        if dsync { sqe.pointee.rw_flags = CLiburing_RWF_DSYNC }
        if linked { sqe.pointee.flags |= CLiburing_IOSQE_IO_LINK }
        unsubmitted = true
    }

    /// Queues an fdatasync (`IORING_FSYNC_DATASYNC`) of `fd`, tagged `tag`.
    func queueFdatasync(_ fd: Int32, tag: UInt64, path: @autoclosure () -> String) throws(WALError) {
        let sqe = try nextSubmissionEntry(path())
        io_uring_prep_fsync(sqe, fd, CLiburing_IORING_FSYNC_DATASYNC)
        io_uring_sqe_set_data64(sqe, tag)
        unsubmitted = true
    }

    /// Queues a poll of the doorbell, tagged `tag` (one completion when it is rung).
    func queueDoorbellPoll(tag: UInt64) throws(WALError) {
        precondition(hasDoorbell)
        let sqe = try nextSubmissionEntry("io_uring doorbell")
        io_uring_prep_poll_add(sqe, doorbell, CLiburing_POLLIN)
        io_uring_sqe_set_data64(sqe, tag)
        unsubmitted = true
    }

    /// Rings the doorbell (any thread).
    func ringDoorbell() {
        var one: UInt64 = 1
        _ = Glibc.write(doorbell, &one, 8)
    }

    /// Resets the doorbell's counter after its poll completed (non-blocking).
    func resetDoorbell() {
        var count: UInt64 = 0
        _ = Glibc.read(doorbell, &count, 8)
    }

    /// Submits what is queued and waits for the next completion; returns its tag and result.
    /// Retries EINTR, EAGAIN and EBUSY; any other failure of the ring is thrown (`path` names it).
    /// `path` names the file in errors (evaluated only then).
    func completion(_ path: @autoclosure () -> String) throws(WALError) -> (tag: UInt64, result: Int32) {
        if let code = TestHooks.fault("io_uring_wait_cqe", path()) {
            throw WALError.io(operation: "io_uring_wait_cqe", errno: code, path: path())
        }
        if unsubmitted {
            while true {
                let result = io_uring_submit_and_wait(ring, 1)
                if result >= 0 { break }
                if result == -EINTR || result == -EAGAIN || result == -EBUSY { continue }
                throw WALError.io(operation: "io_uring_enter", errno: -result, path: path())
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
            throw WALError.io(operation: "io_uring_wait_cqe", errno: -result, path: path())
        }
    }

    /// Releases the ring and the doorbell (once).
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        io_uring_queue_exit(ring)
        ring.deallocate()
        if doorbell >= 0 { Glibc.close(doorbell) }
    }

    /// A free SQE; when the queue is full, submits what is queued and waits until a completion frees one.
    private func nextSubmissionEntry(_ path: String) throws(WALError) -> UnsafeMutablePointer<io_uring_sqe> {
        while true {
            if let sqe = io_uring_get_sqe(ring) { return sqe }
            while true {
                let result = io_uring_submit(ring)
                if result >= 0 { break }
                if result == -EINTR || result == -EAGAIN || result == -EBUSY { continue }
                throw WALError.io(operation: "io_uring_enter", errno: -result, path: path)
            }
            unsubmitted = false
            var cqe: UnsafeMutablePointer<io_uring_cqe>?
            let result = io_uring_wait_cqe(ring, &cqe)
            if result < 0 && result != -EINTR {
                throw WALError.io(operation: "io_uring_wait_cqe", errno: -result, path: path)
            }
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
