import Glibc
import WALFormat
import WALIO
import WALEncryption

/// Appends records to the active segment through a ring of two aligned buffers.
///
/// Records are copied into the *current* buffer. A buffer leaves the ring as a ``Job``: when
/// it fills up (queued, to be written by whoever holds the WAL's I/O role), or when a commit
/// needs the records in it durable (``takeJob(sync:)``). The ring then switches to the other
/// buffer, so appends continue while the first is on disk. A buffer can leave only when the
/// other one is back from disk, so there is at most one job at a time and writes reach the
/// file in order.
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
        fileprivate let buffer: Int
        let length: Int
        /// The first bytes of `length` that hold records (the rest are zeros written ahead).
        package let dataLength: Int
        package let offset: Int64
        /// The last record complete in the buffer; durable once a syncing job completes.
        package let lastLSN: LSN
        /// Durable when it completes (covering every earlier job of the segment too).
        package var sync: Bool
        /// What the engine must make durable: set when the job is taken (``takeJob(sync:)``),
        /// from whether earlier jobs were written without a sync.
        fileprivate(set) var durability: WriteDurability = .none
    }

    package let file: SegmentFile
    package let firstLSN: LSN
    @exclusivity(unchecked) package private(set) var nextLSN: LSN
    /// The highest LSN whose fdatasync has completed.
    @exclusivity(unchecked) package private(set) var durableLSN: LSN

    private let engine: IOEngine
    private let ring: [AlignedBuffer]
    private var current = 0
    /// Valid bytes in the current buffer.
    private var fill = 0
    /// The file offset of the current buffer's first byte (block-aligned).
    private var bufferOffset: Int64
    /// The other buffer has left the ring (queued or being written).
    private var otherInUse = false
    /// A full buffer waiting to be written.
    @exclusivity(unchecked) package private(set) var queuedJob: Job?
    /// The current buffer holds bytes no job has taken yet.
    private var hasUntakenBytes = false
    /// Jobs were written since the last fdatasync.
    private var hasUnsyncedWrites = false
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

    /// Opens a writer positioned at `end` (the end of the last valid record) of `file`,
    /// whose records run from `firstLSN` up to `nextLSN - 1`, all of them durable.
    ///
    /// - Parameters:
    ///   - preamble: written first when the segment is new (`end` is 0) and encrypted.
    ///   - cipher: encrypts every appended record (the segment's key and epoch).
    init(file: SegmentFile, engine: IOEngine, firstLSN: LSN, nextLSN: LSN, end: Int64, bufferSize: Int,
         preamble: SegmentPreamble? = nil, cipher: RecordCipher? = nil) throws(WALError) {
        self.cipher = cipher
        precondition(bufferSize >= Self.blockSize && bufferSize % Self.blockSize == 0)
        self.file = file
        self.engine = engine
        self.firstLSN = firstLSN
        self.nextLSN = nextLSN
        self.durableLSN = nextLSN - 1
        self.ring = [AlignedBuffer(capacity: bufferSize), AlignedBuffer(capacity: bufferSize)]
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
    /// rest of the current buffer, and the other one when it is in the ring.
    package func fits(_ size: Int) -> Bool {
        size <= ring[current].capacity - fill + (otherInUse ? 0 : ring[1 - current].capacity)
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
                    queuedJob = takeBuffer(sync: false)
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

    /// The next job to write, in file order: the queued full buffer, else the current buffer
    /// (when it holds untaken bytes and the other buffer is back). `sync` decides, given the
    /// job's last complete LSN, whether the job ends with fdatasync.
    package func takeJob(sync: (LSN) -> Bool) -> Job? {
        var job: Job
        if let queued = queuedJob {
            queuedJob = nil
            job = queued
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
        guard queuedJob == nil, !hasUntakenBytes, !otherInUse, hasUnsyncedWrites else { return nil }
        otherInUse = true
        return Job(buffer: 1 - current, length: 0, dataLength: 0, offset: bufferOffset, lastLSN: nextLSN - 1, sync: true,
                   durability: .fileData)
    }

    /// Takes the current buffer out of the ring as a job and switches to the other buffer,
    /// carrying the partial last block over.
    private func takeBuffer(sync: Bool) -> Job {
        precondition(!otherInUse, "the other buffer must be back before this one leaves")
        let buffer = ring[current]
        let dataLength = AlignedBuffer.alignUp(fill)
        var length = dataLength
        // Zero the padding so that no stale buffer content ever reaches the disk.
        if length > fill { memset(buffer.base + fill, 0, length - fill) }
        let end = bufferOffset + Int64(length)
        if end > writtenUpTo && length < Self.zeroAhead {
            // A small job reaching blocks never written: write zeros ahead of it (see zeroAhead).
            let pad = min(Self.zeroAhead, buffer.capacity - length)
            memset(buffer.base + length, 0, pad)
            length += pad
        }
        writtenUpTo = max(writtenUpTo, bufferOffset + Int64(length))
        let job = Job(buffer: current, length: length, dataLength: dataLength, offset: bufferOffset, lastLSN: nextLSN - 1, sync: sync)
        let whole = AlignedBuffer.alignDown(fill)
        let carried = fill - whole
        if carried > 0 {
            ring[1 - current].base.copyMemory(from: buffer.base + whole, byteCount: carried)
        }
        bufferOffset += Int64(whole)
        fill = carried
        current = 1 - current
        otherInUse = true
        hasUntakenBytes = false
        return job
    }

    /// Writes a job through the engine (and fdatasyncs it when it syncs). Runs outside the
    /// WAL's lock: it touches only the job's buffer, which stays out of the ring until
    /// ``finish(_:)``.
    package func write(_ job: Job) throws(WALError) {
        let bytes = UnsafeRawBufferPointer(ring[job.buffer].slice(0..<job.length))
        try engine.submit(WriteRequest(bytes: bytes, offset: job.offset, file: file, durability: job.durability))
        try engine.complete()
    }

    /// The record data a job wrote (whole blocks, without the zeros written ahead); valid
    /// until ``finish(_:)`` returns the buffer to the ring.
    package func data(of job: Job) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(ring[job.buffer].slice(0..<job.dataLength))
    }

    /// Returns a written job's buffer to the ring and advances the durable LSN if it synced.
    package func finish(_ job: Job) {
        otherInUse = false
        if job.sync {
            durableLSN = max(durableLSN, job.lastLSN)
            hasUnsyncedWrites = false
        } else {
            hasUnsyncedWrites = true
        }
    }

    /// Gives a failed job's buffer back (the WAL refuses further writes anyway).
    package func returnBuffer(of job: Job) {
        otherInUse = false
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
        hasUnsyncedWrites = false
    }

    /// Closes without syncing (used after a failure, when nothing more can be written).
    func closeWithoutSync() {
        file.close()
    }
}
