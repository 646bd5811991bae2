import Glibc
import WALFormat
import WALIO
import WALEncryption

/// Appends records to the active segment: frames each one (``RecordFraming``), copies it into
/// the ring of buffers (``BufferRing``), hands buffers out as ``Job``s, and keeps what is
/// durable (``DurabilityLedger``).
///
/// A buffer leaves the ring as a job when it fills up (queued, to be written by whoever holds
/// the WAL's I/O role), or when someone needs the records in it durable (``takeJob(demand:covered:)``),
/// so appends continue while the first is on disk. The WAL starts jobs and reports their
/// completions (``written(_:)``, ``synced(throughWrite:lsn:)``); with several flushes in flight a
/// job may end at the last block boundary (``takeWholeBlocks(notBefore:)``), so that the next
/// job starts on a fresh block and can be in flight beside it.
///
/// Not thread-safe: the WAL calls it under its lock. The engine reads a job's buffer outside
/// the lock; the buffer stays out of the ring until the job is reported written or returned.
package final class SegmentWriter {
    /// One buffer on its way to disk.
    package struct Job {
        let slice: BufferRing.Slice
        /// The last record complete in the job; durable once a durable job completes.
        package let lastLSN: LSN
        /// What the engine must make durable: decided when the job is taken, from whether
        /// earlier writes are unsynced.
        package let durability: WriteDurability
        /// What the engine makes of it (``IOEngine/form(of:isEmpty:)``).
        package let form: WriteForm

        /// Bytes written (whole blocks, zeros ahead included); 0 for a sync alone.
        package var length: Int { slice.length }
        /// The first bytes of ``length`` that hold records.
        package var dataLength: Int { slice.dataLength }
        package var offset: Int64 { slice.offset }
        /// Where its write ends: no later write may start below.
        package var end: Int64 { slice.offset + Int64(slice.length) }
        /// Someone waits for its records: it must be durable when it completes.
        package var syncs: Bool { durability != .none }
        /// Durable when its write completes, covering its own range only (may share the device).
        package var isSelfDurable: Bool { syncs && form.isSelfDurable }
    }

    package let file: SegmentFile
    package let firstLSN: LSN
    @exclusivity(unchecked) package private(set) var nextLSN: LSN

    private let engine: IOEngine
    private let framing: RecordFraming
    @exclusivity(unchecked) private var ring: BufferRing
    @exclusivity(unchecked) private var ledger: DurabilityLedger
    /// Full buffers waiting to be written, oldest first.
    @exclusivity(unchecked) private var queuedJobs: [Job] = []
    /// The last record that ends at or before the last block boundary at or below
    /// ``logicalEnd``: what a job cut at that boundary makes durable. Records durable when the
    /// writer opened count as ending there (claiming them again is harmless).
    @exclusivity(unchecked) private var lastLSNBeforeBoundary: LSN

    /// Opens a writer positioned at `end` (the end of the last valid record) of `file`, whose
    /// records run from `firstLSN` up to `nextLSN - 1`, all of them durable.
    ///
    /// - Parameters:
    ///   - buffers: the ring's buffers: one more than the flushes kept in flight.
    ///   - preamble: written first when the segment is new (`end` is 0) and encrypted.
    ///   - cipher: encrypts every appended record (the segment's key and epoch).
    init(file: SegmentFile, engine: IOEngine, firstLSN: LSN, nextLSN: LSN, end: Int64, bufferSize: Int, buffers: Int = 2,
         preamble: SegmentPreamble? = nil, cipher: RecordCipher? = nil) throws(WALError) {
        self.file = file
        self.engine = engine
        self.firstLSN = firstLSN
        self.nextLSN = nextLSN
        self.framing = RecordFraming(cipher: cipher)
        self.ledger = DurabilityLedger(durableLSN: nextLSN - 1)
        self.lastLSNBeforeBoundary = nextLSN - 1
        self.ring = try BufferRing(count: buffers, bufferSize: bufferSize, end: end, file: file)
        if end == 0, let preamble {
            try preamble.encoded.withUnsafeBytes { bytes in
                Result { () throws(WALError) in try put(bytes, holdingIORole: false) }  // a new writer's ring is empty
            }.get()
        }
    }

    /// The highest LSN durable.
    package var durableLSN: LSN { ledger.durableLSN }
    /// Where the next record will start: the logical end of the segment.
    var logicalEnd: Int64 { ring.logicalEnd }
    /// Writes completed so far (what an fdatasync issued now covers).
    package var writesCompleted: Int { ledger.writesCompleted }
    /// A full buffer waits to be written.
    package var hasQueuedJob: Bool { !queuedJobs.isEmpty }

    // MARK: Appending

    /// Bytes a record with a payload of `count` bytes takes in the ring.
    package func recordSize(payloadCount count: Int) -> Int { framing.recordSize(payloadCount: count) }

    /// Whether `size` bytes fit in the ring without a buffer coming back from disk first.
    package func fits(_ size: Int) -> Bool { size <= ring.room }

    /// Appends one record and returns its LSN (encrypted first when the segment is). The
    /// caller checked the plaintext length against the format's limit.
    ///
    /// A record that ``fits(_:)`` is copied without waiting. One that does not needs buffers
    /// back while it is copied: the caller then holds the WAL's I/O role (`holdingIORole`), so
    /// that no job of this segment is on disk, and the writer writes each full buffer itself
    /// (without a sync) as the record goes through the ring.
    /// - Throws: ``WALError/payloadTooLarge(size:limit:)`` before anything is copied; an I/O
    ///   error of such a write (the WAL must then refuse further writes).
    package func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer,
                        holdingIORole: Bool) throws(WALError) -> LSN {
        let lsn = nextLSN
        let start = logicalEnd
        let framed = try framing.frame(storedType: storedType, lsn: lsn, tenant: tenant, vshard: vshard, payload: payload)
        try withUnsafeTemporaryAllocation(byteCount: RecordHeader.size, alignment: 8) { (scratch) throws(WALError) in
            framed.header.encode(into: scratch)
            try put(UnsafeRawBufferPointer(scratch), holdingIORole: holdingIORole)
        }
        if let sealed = framed.sealed {
            for part in [sealed.ciphertext, sealed.tag] {
                try part.withUnsafeBytes { bytes in
                    Result { () throws(WALError) in try put(bytes, holdingIORole: holdingIORole) }
                }.get()
            }
        } else {
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

    /// Copies bytes into the ring; a buffer that fills is queued as a job, or — when the next
    /// buffer is still out and the caller holds the I/O role — the queued job is written first.
    private func put(_ bytes: UnsafeRawBufferPointer, holdingIORole: Bool) throws(WALError) {
        var remaining = bytes
        while !remaining.isEmpty {
            if ring.currentIsFull {
                if ring.nextIsOut {
                    precondition(holdingIORole, "a record that does not fit is appended holding the I/O role")
                    try writeQueuedJob()
                } else {
                    queuedJobs.append(job(ring.take(), lastLSN: nextLSN - 1, durability: .none))
                }
                continue
            }
            remaining = ring.copy(remaining)
        }
    }

    /// Writes the oldest queued job now, without a sync (the caller holds the I/O role, so it is
    /// the only job out of the ring), and takes its buffer back.
    private func writeQueuedJob() throws(WALError) {
        precondition(!queuedJobs.isEmpty, "holding the I/O role, the buffer out of the ring is the queued job")
        try writeAlone(queuedJobs.removeFirst())
    }

    // MARK: Jobs

    /// The next job to write, in file order, or nil: the oldest queued full buffer, else the
    /// current buffer (when it holds untaken bytes and the next buffer is back), else a sync
    /// alone (when someone waits and earlier writes are unsynced). The job must be durable when
    /// `demand` (the highest LSN someone waits for) is above `covered` (what the flights in
    /// flight make durable) and the job holds it: by itself (``WriteDurability/thisWrite``)
    /// when no earlier write is unsynced, else covering those writes too (``WriteDurability/fileData``).
    package func takeJob(demand: LSN, covered: LSN) -> Job? {
        let wanted = demand > covered
        if !queuedJobs.isEmpty {
            let queued = queuedJobs.removeFirst()
            return job(queued.slice, lastLSN: queued.lastLSN, durability: durability(wanted && demand <= queued.lastLSN))
        }
        if ring.hasUntakenBytes && !ring.nextIsOut {
            let lastLSN = nextLSN - 1
            let durability = durability(wanted && demand <= lastLSN)
            return job(ring.take(), lastLSN: lastLSN, durability: durability)
        }
        guard wanted, !ring.hasUntakenBytes, ring.out == 0, ledger.hasUnsyncedWrites else { return nil }
        return job(.empty(at: ring.bufferOffset), lastLSN: nextLSN - 1, durability: .fileData)
    }

    /// Several flushes in flight: the current buffer's whole blocks as a job durable by itself
    /// (``WriteDurability/thisWrite``), cut at the last block boundary, so that the next job
    /// starts on a fresh block; the partial block stays in the ring. Nil when
    /// ``wholeBlocksLastLSN(notBefore:)`` is.
    package func takeWholeBlocks(notBefore: Int64) -> Job? {
        guard let lastLSN = wholeBlocksLastLSN(notBefore: notBefore) else { return nil }
        return job(ring.take(wholeBlocksOnly: true), lastLSN: lastLSN, durability: .thisWrite)
    }

    /// The last record a ``takeWholeBlocks(notBefore:)`` job would make durable now, or nil
    /// when there is no such job: it needs a whole block not yet taken, starting at or after
    /// `notBefore` (the end of every write in flight: two in-flight writes of one block have no
    /// defined order), no queued full buffer, and every earlier write durable (a write durable
    /// by itself vouches for nothing else).
    package func wholeBlocksLastLSN(notBefore: Int64) -> LSN? {
        guard queuedJobs.isEmpty, ring.hasUntakenBytes, !ring.nextIsOut, !ledger.hasUnsyncedWrites,
              ring.bufferOffset >= notBefore, ring.fill >= BufferRing.blockSize else { return nil }
        return lastLSNBeforeBoundary
    }

    private func durability(_ syncs: Bool) -> WriteDurability {
        !syncs ? .none : ledger.hasUnsyncedWrites ? .fileData : .thisWrite
    }

    private func job(_ slice: BufferRing.Slice, lastLSN: LSN, durability: WriteDurability) -> Job {
        Job(slice: slice, lastLSN: lastLSN, durability: durability,
            form: engine.form(of: durability, isEmpty: slice.length == 0))
    }

    /// The request the engine writes for `job`.
    package func request(for job: Job) -> WriteRequest {
        WriteRequest(bytes: ring.bytes(of: job.slice), offset: job.offset, file: file, durability: job.durability)
    }

    /// The record data a job wrote (whole blocks, without the zeros written ahead); valid
    /// until the job is reported written or its buffer returned.
    package func data(of job: Job) -> UnsafeRawBufferPointer { ring.bytes(of: job.slice, data: true) }

    /// `job`'s write completed (its fdatasync may still be on disk): its buffer is back. Returns
    /// the number of writes completed so far, which an fdatasync issued now covers.
    package func written(_ job: Job) -> Int {
        ring.giveBack(job.slice)
        guard job.length > 0 else { return ledger.writesCompleted }
        return ledger.written(selfDurable: job.isSelfDurable)
    }

    /// An fdatasync covering the first `count` writes completed, or the prefix of durable
    /// flights ending at `lsn` (the WAL reports them in flight order, so the durable LSN stays a
    /// prefix whatever order completions arrive in).
    package func synced(throughWrite count: Int, lsn: LSN) {
        ledger.synced(throughWrite: count, lsn: lsn)
    }

    /// Gives a failed job's buffer back (the WAL refuses further writes anyway).
    package func returnBuffer(of job: Job) { ring.giveBack(job.slice) }

    /// The kernel may still read the ring's buffers (``FlightEngine/abandonFlights()``): they
    /// are never reused, and stay allocated after this writer is gone.
    package func pinBuffersForever() { ring.pinForever() }

    /// Writes `job` and waits for it (holding the I/O role, nothing else in flight).
    private func writeAlone(_ job: Job) throws(WALError) {
        do throws(WALError) {
            try engine.write(request(for: job))
        } catch {
            returnBuffer(of: job)
            throw error
        }
        let count = written(job)
        if job.syncs { synced(throughWrite: count, lsn: job.lastLSN) }
    }

    // MARK: Sealing

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
        while let job = takeJob(demand: 0, covered: 0) { try writeAlone(job) }
        let end = logicalEnd
        if try file.size() != end {
            try Syscall.ftruncate(file.descriptor, length: end, path: file.path)
        }
        // fsync, not fdatasync: the new size is metadata the next reader depends on.
        try Syscall.fsync(file.descriptor, path: file.path)
        ledger.syncedAll(lsn: nextLSN - 1)
    }

    /// Closes without syncing (used after a failure, when nothing more can be written).
    func closeWithoutSync() { file.close() }
}
