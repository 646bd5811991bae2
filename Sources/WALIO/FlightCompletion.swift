import Glibc
import WALFormat

/// One request's completions as the ring reports them: its write (resubmitted in parts after a
/// short or interrupted write) and the fdatasync linked after it. A pure state machine — the
/// io_uring engine feeds it each completion's result and does what the step says — so that the
/// error table below is written once and tested on its own (`FlightCompletionTests`).
///
/// | completion | meaning | step |
/// |---|---|---|
/// | write, `res` = remaining | done | ``Step/writeDone(accepted:syncDone:)`` |
/// | write, 0 < `res` < remaining | short write (breaks the link: the fdatasync gets -ECANCELED) | ``Step/resubmit(accepted:)`` the rest, with its fdatasync |
/// | write, -EINTR / -EAGAIN | transient | ``Step/resubmit(accepted:)`` |
/// | write, other error or 0 | the flush failed | ``Step/failed(operation:errno:)`` "write" |
/// | fdatasync, -ECANCELED before its write completed | its write failed or came up short | ``Step/pending``: the write's completion decides |
/// | fdatasync, -ECANCELED after its write completed in full | nothing vouches for durability | ``Step/failed(operation:errno:)`` "fdatasync" |
/// | fdatasync, other error | the data is not durable | ``Step/failed(operation:errno:)`` "fdatasync" |
/// | fdatasync, 0, before its write's completion | reaped out of order | ``Step/pending`` (reported with the write's) |
/// | fdatasync, 0 | durable | ``Step/syncDone`` |
///
/// Each resubmission bumps ``generation``; completions of an earlier submission (a cancelled
/// fdatasync) carry the old one and are ignored by the engine before they reach the machine.
package struct FlightCompletion: Equatable, Sendable {
    /// What the engine does next.
    package enum Step: Equatable, Sendable {
        /// Wait for the flight's other completion.
        case pending
        /// `accepted` bytes were written (the crash model is told); queue the rest of the write,
        /// and its fdatasync, again.
        case resubmit(accepted: Int)
        /// The write completed in full with these last `accepted` bytes; with an fdatasync, it is
        /// issued now (it covers every write completed so far), and `syncDone` says whether its
        /// success arrived already.
        case writeDone(accepted: Int, syncDone: Bool)
        /// The fdatasync completed after the write: the flight is durable.
        case syncDone
        /// The flush failed: the WAL must refuse further writes.
        case failed(operation: String, errno: Int32)
    }

    /// Bytes the write must put on disk.
    package let length: Int
    /// An fdatasync is linked after the write.
    package let fdatasync: Bool
    /// Bytes written so far.
    package private(set) var written = 0
    /// Bumped at each resubmission.
    package private(set) var generation: UInt32 = 0
    /// The write has completed in full (an empty request has none to wait for).
    package private(set) var writeDone: Bool
    private var syncCancelled = false
    private var syncSucceeded = false

    package init(length: Int, fdatasync: Bool) {
        self.length = length
        self.fdatasync = fdatasync
        self.writeDone = length == 0
    }

    /// Bytes still to write.
    package var remaining: Int { length - written }

    /// The write's completion, with the kernel's result.
    package mutating func writeCompleted(_ result: Int32) -> Step {
        if result == -EINTR || result == -EAGAIN { return resubmit(accepted: 0) }
        if result < 0 { return .failed(operation: "write", errno: -result) }
        if result == 0 && remaining > 0 { return .failed(operation: "write", errno: EIO) }  // no progress
        let accepted = min(Int(result), remaining)
        written += accepted
        if written < length { return resubmit(accepted: accepted) }
        if syncCancelled { return .failed(operation: "fdatasync", errno: ECANCELED) }
        writeDone = true
        return .writeDone(accepted: accepted, syncDone: syncSucceeded)
    }

    /// The linked fdatasync's completion, with the kernel's result.
    package mutating func syncCompleted(_ result: Int32) -> Step {
        precondition(fdatasync, "a completion for an fdatasync that was not submitted")
        if result == -ECANCELED {
            if writeDone { return .failed(operation: "fdatasync", errno: ECANCELED) }
            syncCancelled = true
            return .pending
        }
        if result < 0 { return .failed(operation: "fdatasync", errno: -result) }
        if !writeDone {
            syncSucceeded = true
            return .pending
        }
        return .syncDone
    }

    private mutating func resubmit(accepted: Int) -> Step {
        generation &+= 1
        syncCancelled = false
        syncSucceeded = false
        return .resubmit(accepted: accepted)
    }
}
