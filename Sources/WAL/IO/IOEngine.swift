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

/// How the io_uring engine makes a sync flush durable. Both are durable to the same degree;
/// they differ in cost (docs/PERFORMANCE.md).
public enum IOUringSyncMethod: String, Sendable, CaseIterable {
    /// A sync flush that carries everything not yet durable is one `RWF_DSYNC` write; a sync
    /// flush that follows plain writes (of buffers that filled up) is linked to an fdatasync
    /// instead, which covers those writes too. On the reference machine on par with
    /// `.dsyncWrites` and ahead of `.linkedFdatasync` for commits (docs/PERFORMANCE.md), without
    /// `.dsyncWrites`' extra syncs when buffers fill before a sync point.
    case adaptive
    /// Every write carries `RWF_DSYNC`: the kernel completes it once it is durable (one SQE).
    case dsyncWrites
    /// A write SQE linked (`IOSQE_IO_LINK`) to an fdatasync SQE (`IORING_FSYNC_DATASYNC`).
    case linkedFdatasync
}

/// The data path of a segment file. Engines differ in how they move bytes, never in which
/// bytes they move: the segment writer decides every byte and offset, so both engines
/// produce identical files.
///
/// At most one write is outstanding per engine. Its bytes must stay untouched until
/// ``complete()`` returns; the writer's double-buffered ring guarantees that by filling
/// the other buffer meanwhile.
protocol IOEngine: AnyObject {
    var kind: IOEngineKind { get }

    /// Starts writing `bytes` at `offset` (both aligned for O_DIRECT), followed by an
    /// fdatasync when `sync` is set. A synchronous engine finishes before returning.
    func submitWrite(_ bytes: UnsafeRawBufferPointer, at offset: Int64, to file: SegmentFile, sync: Bool) throws(WALError)

    /// Waits for the outstanding write, if any, and throws its failure.
    func complete() throws(WALError)

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, from file: SegmentFile) throws(WALError) -> Int

    /// Releases the engine's resources. Outstanding work must have been completed.
    func shutdown()
}
