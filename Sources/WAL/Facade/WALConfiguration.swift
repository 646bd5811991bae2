import Logging

/// How a ``SegmentedWAL`` is set up. Every option has a default suited to production.
public struct WALConfiguration: Sendable {
    /// The directory holding the segment files. Created (with its parents) if missing.
    public var directory: String

    /// Size at which the active segment is sealed and a new one started: a soft limit, checked
    /// before each append, so a segment ends with a whole record. Default 64 MiB, the seed's.
    public var segmentTargetSize: Int64 = 64 * 1024 * 1024

    /// Whether segments bypass the page cache. Default `.automatic`: O_DIRECT where the file
    /// system accepts it (a WAL is written once and read only at recovery, so caching it
    /// only evicts the database's own pages).
    public var directIO: DirectIOPolicy = .automatic

    /// Bytes in each of the writer's two aligned buffers (a multiple of 4096). A buffer is
    /// written when it fills or at a sync, while the other keeps accepting records. Default
    /// 2 MiB: a writer that syncs every MiB of records (plus their headers) then has each sync's
    /// records in one buffer — one write per sync instead of a full 1 MiB buffer, a small rest
    /// and a hand-off between threads — which measured 12–34 % faster on that workload
    /// (docs/PERFORMANCE.md). Commits of small records do not depend on it.
    public var bufferSize: Int = 2 << 20

    /// How the next segment is prepared before rollover. Default `.allocated`: created and
    /// fallocated to the target size in the background once the active segment is half full,
    /// so ENOSPC shows up before rollover and rollover allocates nothing. `.zeroFilled` also
    /// writes the zeros, sparing the first fdatasync into each extent its conversion, but on
    /// the reference machine it halved streaming throughput (every byte written twice) with no
    /// measurable gain for commits (docs/PERFORMANCE.md). See ``SegmentPreallocation``.
    public var preallocation: SegmentPreallocation = .allocated

    /// Which I/O engine moves the bytes. Default `.automatic`: io_uring where the kernel
    /// allows it, POSIX otherwise.
    public var engine: IOEngineChoice = .automatic

    /// How the io_uring engine makes a sync durable. Default `.adaptive`: one dsync write when
    /// that suffices, a write linked to an fdatasync otherwise (on par with `.dsyncWrites` and
    /// ahead of `.linkedFdatasync` in measurements, and it never makes a streaming workload pay
    /// a sync per full buffer); see ``IOUringSyncMethod``.
    public var ioUringSyncMethod: IOUringSyncMethod = .adaptive

    /// How long a flush waits for more commits to join it before taking the buffer (like
    /// PostgreSQL's `commit_delay`). Default zero: group commit already batches every commit
    /// that arrives while the previous flush is on disk, and a delay only adds latency unless
    /// commits arrive in bursts shorter than a flush.
    public var maxBatchDelay: Duration = .zero

    /// How many flushes group commit may keep in flight at once, 1...16 (io_uring only; the
    /// POSIX engine and ``IOUringSyncMethod/dsyncWrites`` keep one). Above 1, flushes that are
    /// durable by themselves (one `RWF_DSYNC` write) may be on the device together when they
    /// touch different 4 KiB blocks; any other flush goes out alone, so with
    /// ``IOUringSyncMethod/linkedFdatasync`` flushes never overlap (an fdatasync may still be
    /// on the device while the next write goes out). The durable LSN stays a prefix, and files
    /// are byte for byte what one flush at a time writes. Each flush in flight adds a buffer of
    /// ``bufferSize``. Default 1: on the reference machine more gave no gain (<doc:Tuning>).
    public var flushesInFlight: Int = 1

    /// Dimensions added to every metric the WAL reports (for example `[("wal", "orders")]`
    /// to tell several WALs of one process apart). Default none.
    public var metricsDimensions: [(String, String)] = []

    /// Record types replay understands. An unknown type with the required bit stops replay with
    /// an error; an unknown type without it is skipped. Default: the seed's types.
    public var recordTypes: Set<RecordType> = RecordType.seedTypes

    /// Encryption at rest: when set, every new segment starts with a preamble naming the
    /// current key and a fresh random epoch, and records are sealed with AES-256-GCM (the seed's
    /// scheme). Replay decrypts with whichever key of the ring a segment names. Turning
    /// encryption on, off or rotating the current key takes effect from the next segment: the
    /// WAL starts a new segment at every open while encryption is involved. Default: nil.
    public var encryption: KeyRing? = nil

    /// Replay throws ``WALError/encryptedRecordWithoutKey(segment:lsn:)`` for an encrypted
    /// record it cannot decrypt for lack of a key ring, instead of returning it as stored.
    /// Default false.
    public var requirePlaintext = false

    /// How much of the log is checked before the WAL opens for writing. `.recent` (default)
    /// checks every segment's name against its first record and reads the last two segments in
    /// full; `.full` reads (and, with ``encryption``, authenticates) the whole log first. Either
    /// refuses to open a log that replay would refuse, leaving it untouched.
    public var openVerification: OpenVerification = .recent

    /// A single-file WAL of the seed's legacy layout to move into ``directory`` on open.
    public var legacyFile: String? = nil

    /// Where the WAL logs (at info level and below). Default: a logger that discards
    /// everything; the library never bootstraps logging itself.
    public var logger: Logger = Logger(label: "swift-wal", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A configuration for `directory` with every other option at its default.
    public init(directory: String) {
        self.directory = directory
    }

    func validate() throws(WALError) {
        guard !directory.isEmpty else { throw WALError.invalidConfiguration("directory is empty") }
        guard segmentTargetSize > 0 else { throw WALError.invalidConfiguration("segmentTargetSize must be positive") }
        guard maxBatchDelay >= .zero else { throw WALError.invalidConfiguration("maxBatchDelay must not be negative") }
        guard (1...16).contains(flushesInFlight) else {
            throw WALError.invalidConfiguration("flushesInFlight must be 1...16, got \(flushesInFlight)")
        }
        guard bufferSize >= 4096, bufferSize % 4096 == 0 else {
            throw WALError.invalidConfiguration("bufferSize must be a positive multiple of 4096, got \(bufferSize)")
        }
    }
}
