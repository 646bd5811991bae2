import WALFormat

/// Which I/O engine a WAL uses.
public enum IOEngineKind: String, Sendable, CustomStringConvertible {
    /// io_uring: linked write + fdatasync submitted together, completions reaped asynchronously.
    case ioUring = "io_uring"
    /// pwrite/pread/fdatasync system calls.
    case posix = "posix"

    /// The raw value: `io_uring` or `posix`.
    public var description: String { rawValue }
}

/// Which I/O engine a WAL should use.
public enum IOEngineChoice: String, Sendable, CaseIterable {
    /// io_uring where the kernel allows it, otherwise POSIX (logged once at info level).
    case automatic
    /// io_uring, or ``WALError/engineUnavailable(engine:reason:)`` where it cannot run.
    case ioUring = "io_uring"
    /// POSIX system calls only.
    case posix
}

/// How the io_uring engine makes a sync flush durable. All are durable to the same degree;
/// they differ in cost (docs/PERFORMANCE.md). What each makes of every request is one table,
/// `WriteForm` (docs/ARCHITECTURE.md, "I/O engines").
public enum IOUringSyncMethod: String, Sendable, CaseIterable {
    /// One `RWF_DSYNC` write when nothing before it is unsynced; a write linked to an fdatasync
    /// when it must cover earlier plain writes too. The default.
    case adaptive
    /// Every write carries `RWF_DSYNC`: the kernel completes it once it is durable (one SQE).
    case dsyncWrites
    /// A write SQE linked (`IOSQE_IO_LINK`) to an fdatasync SQE (`IORING_FSYNC_DATASYNC`).
    case linkedFdatasync
}

/// How durable a write must be when it completes.
package enum WriteDurability: Equatable, Sendable {
    /// The kernel has the bytes (nothing is promised about the device).
    case none
    /// This write's bytes are durable; every earlier write to the file already is, so a
    /// write that is its own sync (`RWF_DSYNC`) is enough.
    case thisWrite
    /// This write's bytes and every earlier write to the file are durable: a sync of the
    /// file's data after this write.
    case fileData
}

/// One write to a segment: whole 4 KiB blocks at a block-aligned offset (as O_DIRECT
/// demands), from a buffer that stays untouched until the write completes, and the durability
/// the write must have when it completes. An empty request is a sync alone.
package struct WriteRequest {
    let bytes: UnsafeRawBufferPointer
    let offset: Int64
    let file: SegmentFile
    let durability: WriteDurability

    package init(bytes: UnsafeRawBufferPointer, offset: Int64, file: SegmentFile, durability: WriteDurability) {
        self.bytes = bytes
        self.offset = offset
        self.file = file
        self.durability = durability
    }
}

/// The data path of a segment file, one request at a time: it writes a request in the form
/// ``form(of:isEmpty:)`` gives it, and returns once the request has completed — nothing else.
/// Engines differ in how they move bytes, never in which bytes they move: the segment writer
/// decides every byte, offset and durability, so both engines produce identical files, and an
/// engine keeps no history of earlier writes.
///
/// An engine that can keep several requests in flight is a ``FlightEngine`` as well.
package protocol IOEngine: AnyObject {
    var kind: IOEngineKind { get }

    /// What a request of this durability becomes on the device (``WriteForm``): the writer
    /// asks, rather than guessing, whether a write is durable by itself.
    func form(of durability: WriteDurability, isEmpty: Bool) -> WriteForm

    /// Writes `request` and waits until it has completed (durable, when it asks to be).
    /// Never called while flights of a ``FlightEngine`` are in flight.
    func write(_ request: WriteRequest) throws(WALError)

    /// Releases the engine's resources. Every request must have completed.
    func shutdown()
}
