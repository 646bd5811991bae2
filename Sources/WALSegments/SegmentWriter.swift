import Glibc
import WALFormat
import WALIO
import WALEncryption

/// Appends records to the active segment through a ring of aligned buffers (two by default:
/// one flush in flight; one more per further flush in flight).
///
/// Records are copied into the *current* buffer. A buffer leaves the ring as a ``Job``: when
/// it fills up (queued, to be written by whoever holds the WAL's I/O role), or when a commit
/// needs the records in it durable (``takeJob(sync:)``). The ring then moves on to
/// the next buffer, so appends continue while the first is on disk. Buffers leave and come back
/// in ring order, and a buffer can leave only when the next one is back, so writes reach the
/// file in order. With one flush in flight a buffer comes back once its write and sync are
/// done; with several (``written(_:)``, ``synced(throughWrite:lsn:)``) once its write is — an
/// fdatasync needs no buffer. With several, a job may also end at the last block boundary
/// (``takeWholeBlocks(notBefore:)``), leaving the partial block in the ring, so that the next
/// job starts on a fresh block and its write can be in flight beside this one's; the WAL never
/// has two writes of one block in flight together.
///
/// Writes cover whole 4 KiB blocks at block-aligned offsets (what O_DIRECT demands). A job
/// that ends inside a block pads the block with zeros on disk and carries the block's valid
/// bytes over to the start of the next buffer, which rewrites that block at the same offset.
/// The segment therefore never holds a zero gap between records, whatever the sync pattern,
/// and the zeros past the last record are never mistaken for one (a record never starts with
/// zero bytes, see ``SegmentScanner``).
///
/// Not thread-safe: the WAL calls it under its lock, except ``write(_:)``, which the holder
/// of the I/O role runs outside the lock on the job's buffer, which nobody else touches.
package final class SegmentWriter {
    static let blockSize = AlignedBuffer.alignment

    /// One buffer on its way to disk: `length` bytes (whole blocks) at `offset`.
    package struct Job {
        /// The ring buffer it was taken from; -1 for a sync alone.
        fileprivate let buffer: Int
        package let length: Int
        /// The first bytes of `length` that hold records (the rest are zeros written ahead).
        package let dataLength: Int
        package let offset: Int64
        /// The last record complete in the buffer; durable once a syncing job completes.
        package let lastLSN: LSN
        /// Durable when it completes (covering every earlier job of the segment too).
        package var sync: Bool
        /// What the engine must make durable: set when the job is taken (``takeJob(sync:)``),
        /// from whether earlier jobs were written without a sync.
        package fileprivate(set) var durability: WriteDurability = .none
    }

    package let file: SegmentFile
    package let firstLSN: LSN
    @exclusivity(unchecked) package private(set) var nextLSN: LSN
    /// The highest LSN whose fdatasync has completed.
    @exclusivity(unchecked) package private(set) var durableLSN: LSN

    private let engine: IOEngine
    private let ring: [AlignedBuffer]
    private var current = 0
    /// Buffers out of the ring (queued or being written): the `out` buffers before `current`.
    private var out = 0
    /// Valid bytes in the current buffer.
    private var fill = 0
    /// The file offset of the current buffer's first byte (block-aligned).
    private var bufferOffset: Int64
    /// The next buffer is out of the ring (queued or being written): the current one cannot leave.
    private var otherInUse: Bool { out == ring.count - 1 }
    /// Full buffers waiting to be written, oldest first.
    private var queuedJobs: [Job] = []
    /// The oldest full buffer waiting to be written.
    package var queuedJob: Job? { queuedJobs.first }
    /// The current buffer holds bytes no job has taken yet.
    private var hasUntakenBytes = false
    /// Writes completed, and how many of them an fdatasync (or a dsync write) has covered.
    package private(set) var writesCompleted = 0
    private var writesSynced = 0
    /// Jobs were written since the last fdatasync.
    private var hasUnsyncedWrites: Bool { writesSynced < writesCompleted }
    /// Encrypts each record's payload, when the segment is encrypted.
    private let cipher: RecordCipher?

    /// How far ahead of a small job the writer writes zeros into blocks the file has never
    /// had written. The first write into an unwritten extent (fallocated space) or past the end
    /// of the file makes its fdatasync commit the file system's journal too — about twice the
    /// cost of a data-only fdatasync on ext4. Commits of small records would pay that every time
    /// they cross into a new 4 KiB block (every ~30 commits of 100 B, so at p99) and on almost
    /// every flush under group commit. Writing 64 KiB of zeros ahead, in the same write, pays the
    /// journal commit once per 64 KiB instead: the blocks that follow are overwrites. Zeros past
    /// the last record read as the end of the log, and sealing cuts them off. Jobs of 64 KiB or
    /// more (streaming) get no padding: they convert their own range in one fdatasync anyway.
    /// 64 KiB measured best of 64 KiB / 256 KiB / 1 MiB: larger pads raised the p99 of 64
    /// concurrent committers (the zero write lands on the critical path), docs/PERFORMANCE.md.
    static let zeroAhead = 64 * 1024
    /// File offset up to which this writer has written every block (records or zeros).
    private var writtenUpTo: Int64

    /// Where the next record will start: the logical end of the segment.
    var logicalEnd: Int64 { bufferOffset + Int64(fill) }

    /// The last record that ends at or before the last block boundary at or below
    /// ``logicalEnd``: what a job cut at that boundary (``takeWholeBlocks(notBefore:)``) makes
    /// durable. Kept as records are appended (records that were durable already when the writer
    /// opened count as ending there: claiming them again is harmless).
    private var lastLSNBeforeBoundary: LSN

    /// Opens a writer positioned at `end` (the end of the last valid record) of `file`,
    /// whose records run from `firstLSN` up to `nextLSN - 1`, all of them durable.
    ///
    /// - Parameters:
    ///   - preamble: written first when the segment is new (`end` is 0) and encrypted.
    ///   - cipher: encrypts every appended record (the segment's key and epoch).
    init(file: SegmentFile, engine: IOEngine, firstLSN: LSN, nextLSN: LSN, end: Int64, bufferSize: Int, buffers: Int = 2,
         preamble: SegmentPreamble? = nil, cipher: RecordCipher? = nil) throws(WALError) {
        self.cipher = cipher
        precondition(bufferSize >= Self.blockSize && bufferSize % Self.blockSize == 0)
        self.file = file
        self.engine = engine
        self.firstLSN = firstLSN
        self.nextLSN = nextLSN
        self.durableLSN = nextLSN - 1
        self.lastLSNBeforeBoundary = nextLSN - 1
        precondition(buffers >= 2)
        self.ring = (0..<buffers).map { _ in AlignedBuffer(capacity: bufferSize) }
        self.bufferOffset = AlignedBuffer.alignDown(end)
        self.fill = Int(end - bufferOffset)
        self.writtenUpTo = AlignedBuffer.alignUp(end)
        if fill > 0 {
            // Load the partial last block: the next job rewrites it with new records appended.
            let block = ring[0].slice(0..<Self.blockSize)
            let got = try file.read(into: block, at: bufferOffset)
            guard got >= fill else {
                throw WALError.io(operation: "pread", errno: EIO, path: file.path)
            }
            memset(ring[0].base + fill, 0, Self.blockSize - fill)
        }
        if end == 0, let preamble {
            try preamble.encoded.withUnsafeBytes { bytes in
                Result { () throws(WALError) in try put(bytes, holdingIORole: false) }  // a new writer's buffer is free
            }.get()
        }
    }

    /// Bytes a record with a payload of `count` bytes takes in the ring (header, payload, and
    /// the GCM tag when the segment is encrypted).
    package func recordSize(payloadCount count: Int) -> Int {
        RecordHeader.size + count + (cipher == nil ? 0 : RecordCipher.tagSize)
    }

    /// Whether `size` bytes fit in the ring without a buffer coming back from disk first: the
    /// rest of the current buffer, and the others that are in the ring.
    package func fits(_ size: Int) -> Bool {
        size <= ring[current].capacity - fill + (ring.count - 1 - out) * ring[current].capacity
    }

    /// Appends one record and returns its LSN (encrypted first when the segment is). The
    /// caller checked the plaintext length against the format's limit.
    ///
    /// A record that ``fits(_:)`` is copied without waiting. One that does not needs the other
    /// buffer back while it is copied: the caller then holds the WAL's I/O role
    /// (`holdingIORole`), so that no job of this segment is on disk, and the writer writes each
    /// full buffer itself (without a sync) as the record goes through the ring.
    /// - Throws: ``WALError/payloadTooLarge(size:limit:)`` before anything is copied; an I/O
    ///   error of such a write (the WAL must then refuse further writes).
    package func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer,
                holdingIORole: Bool) throws(WALError) -> LSN {
        let lsn = nextLSN
        let start = logicalEnd
        var header = RecordHeader(storedType: storedType, lsn: lsn, tenant: tenant, vshard: vshard,
                                  payloadLength: UInt32(payload.count))
        if let cipher {
            guard payload.count <= RecordHeader.maxPayloadLength - RecordCipher.tagSize else {
                throw WALError.payloadTooLarge(size: payload.count, limit: RecordHeader.maxPayloadLength - RecordCipher.tagSize)
            }
            header.storedType &= ~RecordType.encryptedFlag
            try cipher.seal(payload, header: header) { (ciphertext, tag) throws(WALError) in
                header.storedType |= RecordType.encryptedFlag
                header.payloadLength = UInt32(ciphertext.count + tag.count)
                header.crc = header.computeChecksum(payload: ciphertext, tag)
                try putHeader(header, holdingIORole: holdingIORole)
                try put(ciphertext, holdingIORole: holdingIORole)
                try put(tag, holdingIORole: holdingIORole)
            }
        } else {
            header.crc = header.computeChecksum(payload: payload)
            try putHeader(header, holdingIORole: holdingIORole)
            try put(payload, holdingIORole: holdingIORole)
        }
        nextLSN += 1
        // A record that reaches (or crosses) a block boundary moves the boundary a cut job would
        // end at; the last record before it is this one when it ends exactly there, else the one before.
        let end = logicalEnd
        let boundary = AlignedBuffer.alignDown(end)
        if boundary >= start { lastLSNBeforeBoundary = end == boundary ? lsn : lsn - 1 }
        return lsn
    }

    private func putHeader(_ header: RecordHeader, holdingIORole: Bool) throws(WALError) {
        try withUnsafeTemporaryAllocation(byteCount: RecordHeader.size, alignment: 8) { (scratch) throws(WALError) in
            header.encode(into: scratch)
            try put(UnsafeRawBufferPointer(scratch), holdingIORole: holdingIORole)
        }
    }

    /// Copies bytes into the ring; a buffer that fills is queued as a job, or — when the other
    /// buffer is still out and the caller holds the I/O role — the queued job is written first.
    private func put(_ bytes: UnsafeRawBufferPointer, holdingIORole: Bool) throws(WALError) {
        var remaining = bytes
        while !remaining.isEmpty {
            let buffer = ring[current]
            if fill == buffer.capacity {
                if otherInUse {
                    precondition(holdingIORole, "a record that does not fit is appended holding the I/O role")
                    try writeQueuedJob()
                } else {
                    queuedJobs.append(takeBuffer(sync: false))
                }
                continue
            }
            let count = min(buffer.capacity - fill, remaining.count)
            (buffer.base + fill).copyMemory(from: remaining.baseAddress!, byteCount: count)
            fill += count
            hasUntakenBytes = true
            remaining = UnsafeRawBufferPointer(rebasing: remaining[count...])
        }
    }

    /// Writes the queued full buffer now, without a sync (the caller holds the I/O role, so it
    /// is the only job out of the ring), and takes it back.
    private func writeQueuedJob() throws(WALError) {
        guard let job = takeJob(sync: { _ in false }) else {
            preconditionFailure("holding the I/O role, the buffer out of the ring is the queued job")
        }
        do throws(WALError) {
            try write(job)
        } catch {
            returnBuffer(of: job)
            throw error
        }
        finish(job)
    }

    /// The next job to write, in file order: the oldest queued full buffer, else the current
    /// buffer (when it holds untaken bytes and the next buffer is back). `sync` decides, given
    /// the job's last complete LSN, whether the job must be durable when its write completes:
    /// by itself (``WriteDurability/thisWrite``) when nothing written before is unsynced, else
    /// with an fdatasync after the write that covers those writes too (``WriteDurability/fileData``).
    package func takeJob(sync: (LSN) -> Bool) -> Job? {
        var job: Job
        if !queuedJobs.isEmpty {
            job = queuedJobs.removeFirst()
            job.sync = sync(job.lastLSN)
        } else {
            guard hasUntakenBytes, !otherInUse else { return nil }
            job = takeBuffer(sync: sync(nextLSN - 1))
        }
        job.durability = !job.sync ? .none : hasUnsyncedWrites ? .fileData : .thisWrite
        return job
    }

    /// Whether a sync job is still needed although no bytes are untaken: jobs were written
    /// without fdatasync since the last one.
    /// Such a job writes nothing; the engine just fdatasyncs.
    package func takeSyncOnlyJob() -> Job? {
        guard queuedJobs.isEmpty, !hasUntakenBytes, out == 0, hasUnsyncedWrites else { return nil }
        return Job(buffer: -1, length: 0, dataLength: 0, offset: bufferOffset, lastLSN: nextLSN - 1, sync: true,
                   durability: .fileData)
    }

    /// Several flushes in flight: the current buffer's whole blocks as a job durable by itself
    /// (``WriteDurability/thisWrite``), cut at the last block boundary so that the next job
    /// starts on a fresh block and can go out while this one is on disk; the partial block
    /// after the cut stays in the ring for a later job. Nil unless the buffer holds at least one
    /// whole block not yet taken, its first block lies at or after `notBefore` (the end of
    /// every write in flight: two in-flight writes of one block have no defined order), no
    /// full buffer is queued, and every earlier write is durable (a write durable by itself
    /// vouches for nothing else).
    package func takeWholeBlocks(notBefore: Int64) -> Job? {
        guard wholeBlocksLastLSN(notBefore: notBefore) != nil else { return nil }
        var job = takeBuffer(sync: true, wholeBlocksOnly: true)
        job.durability = .thisWrite
        return job
    }

    /// The last record a ``takeWholeBlocks(notBefore:)`` job would make durable now, or nil
    /// when there is no such job.
    package func wholeBlocksLastLSN(notBefore: Int64) -> LSN? {
        guard queuedJobs.isEmpty, hasUntakenBytes, !otherInUse, !hasUnsyncedWrites,
              bufferOffset >= notBefore, fill >= Self.blockSize else { return nil }
        return lastLSNBeforeBoundary
    }

    /// Takes the current buffer out of the ring as a job and switches to the other buffer,
    /// carrying the partial last block over: the job writes it too (padded with zeros), or,
    /// `wholeBlocksOnly`, ends before it (the job's last record is then the last one that ends
    /// at the boundary).
    private func takeBuffer(sync: Bool, wholeBlocksOnly: Bool = false) -> Job {
        precondition(!otherInUse, "the other buffer must be back before this one leaves")
        let buffer = ring[current]
        let whole = AlignedBuffer.alignDown(fill)
        let carried = fill - whole
        let next = (current + 1) % ring.count
        if carried > 0 {
            ring[next].base.copyMemory(from: buffer.base + whole, byteCount: carried)
        }
        let dataLength = wholeBlocksOnly ? whole : AlignedBuffer.alignUp(fill)
        var length = dataLength
        // Zero the padding so that no stale buffer content ever reaches the disk.
        if length > fill { memset(buffer.base + fill, 0, length - fill) }
        let end = bufferOffset + Int64(length)
        if end > writtenUpTo && length < Self.zeroAhead {
            // A small job reaching blocks never written: write zeros ahead of it (see zeroAhead;
            // after a cut, over the carried block's place too: the next job rewrites it).
            let pad = min(Self.zeroAhead, buffer.capacity - length)
            memset(buffer.base + length, 0, pad)
            length += pad
        }
        writtenUpTo = max(writtenUpTo, bufferOffset + Int64(length))
        let lastLSN = wholeBlocksOnly ? lastLSNBeforeBoundary : nextLSN - 1
        let job = Job(buffer: current, length: length, dataLength: dataLength, offset: bufferOffset, lastLSN: lastLSN, sync: sync)
        bufferOffset += Int64(whole)
        fill = carried
        current = next
        out += 1
        hasUntakenBytes = wholeBlocksOnly && carried > 0
        return job
    }

    /// Writes a job through the engine (and fdatasyncs it when it syncs). Runs outside the
    /// WAL's lock: it touches only the job's buffer, which stays out of the ring until
    /// ``finish(_:)``.
    package func write(_ job: Job) throws(WALError) {
        try engine.submit(request(for: job))
        try engine.complete()
    }

    /// Starts a job as flight `id` without waiting (several flushes in flight; the caller
    /// started none since the previous job's ``written(_:)``). Outside the WAL's lock, like
    /// ``write(_:)``.
    package func start(_ job: Job, id: Int) throws(WALError) {
        try engine.start(request(for: job), id: id)
    }

    private func request(for job: Job) -> WriteRequest {
        let bytes = job.buffer < 0 ? UnsafeRawBufferPointer(ring[0].slice(0..<0))
            : UnsafeRawBufferPointer(ring[job.buffer].slice(0..<job.length))
        return WriteRequest(bytes: bytes, offset: job.offset, file: file, durability: job.durability)
    }

    /// The record data a job wrote (whole blocks, without the zeros written ahead); valid
    /// until ``finish(_:)`` (or ``written(_:)``) returns the buffer to the ring.
    package func data(of job: Job) -> UnsafeRawBufferPointer {
        job.buffer < 0 ? UnsafeRawBufferPointer(ring[0].slice(0..<0))
            : UnsafeRawBufferPointer(ring[job.buffer].slice(0..<job.dataLength))
    }

    /// Returns a written job's buffer to the ring and advances the durable LSN if it synced.
    package func finish(_ job: Job) {
        returnBuffer(of: job)
        writesCompleted += 1
        if job.sync {
            durableLSN = max(durableLSN, job.lastLSN)
            writesSynced = writesCompleted
        }
    }

    /// Several flushes in flight: `job`'s write completed (its fdatasync may still be on disk).
    /// Returns its buffer and the number of writes completed so far, which the job's fdatasync
    /// covers (``synced(throughWrite:lsn:)``).
    package func written(_ job: Job) -> Int {
        returnBuffer(of: job)
        let allSynced = writesSynced == writesCompleted
        writesCompleted += 1
        // A write durable by itself leaves nothing unsynced when nothing was before it.
        if job.durability == .thisWrite && allSynced { writesSynced = writesCompleted }
        return writesCompleted
    }

    /// Several flushes in flight: an fdatasync that covers the first `count` writes completed,
    /// whose last complete record is `lsn`, completed. Every job's records up to `lsn` were in
    /// those writes; or the prefix of flights the WAL knows durable ends at `lsn` (the WAL calls
    /// it in flight order, once every earlier flight is durable, so the durable LSN stays a prefix
    /// whatever order completions arrive in).
    package func synced(throughWrite count: Int, lsn: LSN) {
        writesSynced = max(writesSynced, count)
        durableLSN = max(durableLSN, lsn)
    }

    /// Gives a failed job's buffer back (the WAL refuses further writes anyway).
    /// The kernel may still read the ring's buffers (see ``IOEngine/abandonFlights()``): they
    /// are never reused, and stay allocated after this writer is gone.
    package func pinBuffersForever() {
        AlignedBuffer.pinForever(ring)
    }

    package func returnBuffer(of job: Job) {
        if job.buffer >= 0 { out -= 1 }
    }

    /// Makes the segment final: everything durable, the file cut to the end of its last
    /// record (dropping block padding and any preallocated tail), and closed.
    func seal() throws(WALError) {
        try trimAndSync()
        file.close()
    }

    /// Everything appended made durable and the file cut to the end of its last record. The
    /// writer stays usable (a rollover whose next file cannot be created keeps appending here:
    /// the carried partial block is rewritten at the same offset and the file grows again).
    func trimAndSync() throws(WALError) {
        while let job = takeJob(sync: { _ in false }) {
            try write(job)
            finish(job)
        }
        let end = logicalEnd
        if try file.size() != end {
            try Syscall.ftruncate(file.descriptor, length: end, path: file.path)
        }
        // fsync, not fdatasync: the new size is metadata the next reader depends on.
        try Syscall.fsync(file.descriptor, path: file.path)
        durableLSN = nextLSN - 1
        writesSynced = writesCompleted
    }

    /// Closes without syncing (used after a failure, when nothing more can be written).
    func closeWithoutSync() {
        file.close()
    }
}
