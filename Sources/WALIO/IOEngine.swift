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

/// The data path of a segment file: it writes a request, durably when the request says so —
/// nothing else. Engines differ in how they move bytes, never in which bytes they move: the
/// segment writer decides every byte, offset and durability, so both engines produce
/// identical files, and an engine keeps no history of earlier writes.
///
/// Two ways to use an engine. One flush at a time: ``submit(_:)`` then ``complete()``, which
/// waits for it (both engines). Several flushes in flight (an engine whose
/// ``maxFlushesInFlight`` is above 1, io_uring): ``start(_:id:)`` submits a request and returns,
/// ``nextFlightEvent(armDoorbell:)`` reports its write's completion and, separately, its
/// fdatasync's, so that the next write can go out while earlier fdatasyncs are still on disk.
/// The two ways never overlap: every flight has completed before ``submit(_:)`` is used again.
package protocol IOEngine: AnyObject {
    var kind: IOEngineKind { get }

    /// Starts `request`. A synchronous engine finishes it before returning.
    func submit(_ request: WriteRequest) throws(WALError)

    /// Waits for the oldest submitted request and throws its failure.
    func complete() throws(WALError)

    /// How many flushes this engine can keep in flight through ``start(_:id:)`` (1: none, use
    /// ``submit(_:)``).
    var maxFlushesInFlight: Int { get }

    /// Submits `request` as flight `id` and returns without waiting. A request that must be
    /// ``WriteDurability/fileData`` is a write linked to an fdatasync (an empty one, an
    /// fdatasync alone): the fdatasync covers every write that completed before it was issued.
    /// A ``WriteDurability/thisWrite`` request is a write durable by itself (`RWF_DSYNC`),
    /// covering its own range only. The caller never has two writes of one block in flight
    /// (they have no defined order on the device) and starts a write that is not durable by
    /// itself only once every earlier write's ``FlightEvent/written(_:)`` has arrived.
    func start(_ request: WriteRequest, id: Int) throws(WALError)

    /// Waits for the next event of the flights started; with `armDoorbell`, ``ringDoorbell()``
    /// also ends the wait (``FlightEvent/doorbell``).
    func nextFlightEvent(armDoorbell: Bool) throws(WALError) -> FlightEvent

    /// Ends a ``nextFlightEvent(armDoorbell:)`` waiting with `armDoorbell` (any thread).
    func ringDoorbell()

    /// After a failure: waits until the kernel is done with every request started (so that no
    /// buffer is still read), and forgets them. False when that could not be established (the
    /// ring itself failed while completions were due): the kernel may still read the flights'
    /// buffers, which the caller must then never reuse or free (``AlignedBuffer/pinForever(_:)``).
    func abandonFlights() -> Bool

    /// Releases the engine's resources. Every submitted request must have been completed.
    func shutdown()
}

/// What ``IOEngine/nextFlightEvent(armDoorbell:)`` reports.
package enum FlightEvent: Equatable {
    /// The flight's write completed in full: its buffer is free, the next write may start.
    case written(Int)
    /// The flight is durable: its fdatasync completed (every write completed before that
    /// flight's write, and the write itself, is durable), or its write durable by itself did
    /// (its own range only; reported right after ``written(_:)``).
    case synced(Int)
    /// ``IOEngine/ringDoorbell()`` was called.
    case doorbell
}

extension IOEngine {
    var maxFlushesInFlight: Int { 1 }
    func start(_ request: WriteRequest, id: Int) throws(WALError) { preconditionFailure("\(kind) keeps one flush in flight") }
    func nextFlightEvent(armDoorbell: Bool) throws(WALError) -> FlightEvent { preconditionFailure("\(kind) keeps one flush in flight") }
    func ringDoorbell() {}
    func abandonFlights() -> Bool { true }
}
