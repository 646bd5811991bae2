import Dispatch
import Glibc
import Logging
import Synchronization

/// A write-ahead log kept as a directory of segment files, byte-compatible with the seed's
/// (nodedb-wal) format.
///
/// ```swift
/// let wal = try SegmentedWAL(configuration: .init(directory: "/var/lib/db/wal"))
/// let lsn = try wal.commit(.put, tenant: 1, vshard: 0, payload: bytes)  // durable on return
/// let next = try wal.append(.put, payload: more)   // buffered
/// try await wal.durable(next)                      // suspends, never blocks
/// var records = wal.records(from: checkpoint)
/// while let record = try records.next() { apply(record) }
/// _ = try wal.truncate(before: checkpoint)
/// ```
///
/// Every method may be called from any number of threads and tasks at once. Appends take
/// LSNs in the order their records enter the buffer, which is the order of the log.
/// Concurrent commits are grouped: while one flush (write + fdatasync) is on disk, the next
/// batch gathers, and one fdatasync makes the whole batch durable (see ``commit(_:tenant:vshard:payload:)-3t0un``).
///
/// Once a write or sync has failed, the WAL cannot prove what reached the disk, so every
/// waiter of that flush and every later call that writes throws ``WALError/failed(_:)`` with
/// the original error: reopen the directory to recover what is on disk.
public final class SegmentedWAL: Sendable {
    /// The configuration the WAL was opened with.
    public let configuration: WALConfiguration
    /// The engine moving the bytes.
    public var engine: IOEngineKind { logWriter.engineKind }
    /// Whether segment files are written with O_DIRECT.
    public var isDirectIO: Bool { logWriter.isDirectIO }

    let logWriter: LogWriter
    private let lock: DirectoryLock
    /// Point reads by LSN (``record(at:)``), with their sparse segment indexes.
    private let pointReader: PointReader
    /// The metadata file (``setMetadata(_:)``), serialised by its own lock.
    let metadataState = Mutex(MetadataState())

    /// Opens the WAL in `configuration.directory`, creating it when missing, and takes the
    /// directory's advisory lock: a second writer on the same directory gets
    /// ``WALError/directoryLocked(path:)``. The lock is released by ``close()`` (or deinit).
    ///
    /// The log is checked first as ``WALConfiguration/openVerification`` says (by default the
    /// segment names and the last two segments in full), with the replay rules: a log that
    /// replay would refuse — a misnamed or stray last segment, an LSN gap, damage in a sealed
    /// segment, an unknown required record type — is refused with that error, and the check
    /// itself changes nothing on disk. Two steps come before the check and are not undone by a
    /// refusal: a legacy file (``WALConfiguration/legacyFile``) is migrated into the directory,
    /// and a cut recorded and not finished (a crash during ``truncate(after:)`` or
    /// ``reset(to:)``) is finished — every reader of this library already sees the log as cut.
    /// Then the last segment's end is found by the end-of-log rules
    /// (docs/FORMAT.md); anything after its last valid record (a torn or partly persisted
    /// write, stale bytes) is cut off and the cut made durable before this returns.
    public init(configuration: WALConfiguration) throws(WALError) {
        try configuration.validate()
        self.configuration = configuration
        let logger = configuration.logger
        let directory = configuration.directory

        if let type = try Syscall.fileType(directory), type != S_IFDIR {
            throw WALError.invalidConfiguration("\(directory) exists and is not a directory")
        }
        try Syscall.makeDirectories(directory)
        lock = try DirectoryLock(directory: directory)
        if let legacy = configuration.legacyFile,
           let migrated = try LegacyMigration.migrate(legacyFile: legacy, into: directory) {
            logger.info("migrated legacy WAL file", metadata: ["from": "\(legacy)", "to": "\(migrated)"])
        }

        try LogCut.removeLeftover(in: directory)
        if let cut = try LogCut.pending(in: directory) {
            // A crash interrupted truncate(after:) or reset(to:) after its intent was durable.
            logger.info("finishing an interrupted cut of the log", metadata: ["kind": "\(cut.kind)", "lsn": "\(cut.lsn)"])
            try cut.apply(in: directory)
        }
        let engine = try EngineSelection.make(configuration.engine, syncMethod: configuration.ioUringSyncMethod,
                                             flushesInFlight: configuration.flushesInFlight, logger: logger)
        let segments = try SegmentDirectory.discover(directory)
        let tail = try Recovery.findTail(of: segments, directory: directory, verification: configuration.openVerification,
                                         recordTypes: configuration.recordTypes, keyRing: configuration.encryption)
        let active = try ActiveSegment(resuming: tail, settings: .init(
            directory: directory, segmentTargetSize: configuration.segmentTargetSize, bufferSize: configuration.bufferSize,
            buffers: engine.maxFlights + 1,
            directIO: configuration.directIO, preallocation: configuration.preallocation, encryption: configuration.encryption,
            logger: logger), engine: engine)
        self.pointReader = PointReader(directory: directory, recordTypes: configuration.recordTypes,
                                       keyRing: configuration.encryption, requirePlaintext: configuration.requirePlaintext)
        self.logWriter = LogWriter(options: .init(maxBatchDelay: configuration.maxBatchDelay,
                                                  metricsDimensions: configuration.metricsDimensions,
                                                  bufferSize: configuration.bufferSize, logger: logger),
                                   segment: active, engine: engine)
        logger.debug("WAL opened", metadata: [
            "directory": "\(directory)", "segments": "\(max(segments.count, 1))",
            "nextLSN": "\(logWriter.nextLSN)", "engine": "\(engine.kind)", "directIO": "\(logWriter.isDirectIO)",
        ])
    }

    deinit {
        try? logWriter.close()
    }

    // MARK: Writing

    /// Appends a record to the buffer and returns its LSN. The record is durable after the
    /// next ``sync()``, or once ``waitUntilDurable(_:)`` / ``durable(_:)`` for its LSN returns.
    /// When the active segment has reached ``WALConfiguration/segmentTargetSize``, it is sealed
    /// and a new segment started first.
    ///
    /// Waits only when both buffers are full (the disk is behind): back-pressure, not a flush.
    ///
    /// - Throws: ``WALError/payloadTooLarge(size:limit:)`` (the WAL stays usable),
    ///   ``WALError/invalidArgument(_:)`` when the log has used every LSN (``LSNDomain/last``),
    ///   ``WALError/closed``, ``WALError/failed(_:)``, or the I/O error of a flush.
    @discardableResult
    public func append<Payload: Collection<UInt8>>(_ type: RecordType, tenant: UInt32 = 0, vshard: UInt16 = 0,
                                                  payload: Payload) throws(WALError) -> LSN {
        try appendTicket(type, tenant: tenant, vshard: vshard, payload: payload).lsn
    }

    func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> LSN {
        try appendTicket(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload).lsn
    }

    func appendTicket(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> AppendTicket {
        guard payload.count <= RecordHeader.maxPayloadLength else {
            throw WALError.payloadTooLarge(size: payload.count, limit: RecordHeader.maxPayloadLength)
        }
        return try logWriter.append(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload)
    }

    /// Appends like ``append(_:tenant:vshard:payload:)``, returning the commit's ticket.
    func appendTicket<Payload: Collection<UInt8>>(_ type: RecordType, tenant: UInt32, vshard: UInt16,
                                                  payload: Payload) throws(WALError) -> AppendTicket {
        let stored = type.rawValue
        let contiguous = payload.withContiguousStorageIfAvailable { buffer in
            Result { () throws(WALError) -> AppendTicket in
                try self.appendTicket(storedType: stored, tenant: tenant, vshard: vshard, payload: UnsafeRawBufferPointer(buffer))
            }
        }
        if let contiguous { return try contiguous.get() }
        return try Array(payload).withUnsafeBytes { buffer in
            Result { () throws(WALError) -> AppendTicket in
                try self.appendTicket(storedType: stored, tenant: tenant, vshard: vshard, payload: buffer)
            }
        }.get()
    }

    /// Appends a record and blocks until it is durable; returns its LSN.
    ///
    /// Group commit: a commit that finds no flush in progress flushes at once in the calling
    /// thread; commits arriving while a flush is on disk wait, and the next flush covers all of
    /// them with one fdatasync. Each commit returns when *its* record is durable.
    ///
    /// A commit racing a cut (``truncate(after:)`` or ``reset(to:)`` from another thread) that
    /// removes its record before the record is durable fails with ``WALError/truncated(after:)``
    /// or ``WALError/logReset(to:)`` — even when the cut has handed the same LSN to another
    /// record since: the commit carries a ticket of its own append, not only the LSN. So a
    /// returned LSN always names the caller's record, durable. (A cut that runs after the
    /// record was durable may still remove it later: that is the cut's effect, not a lost write;
    /// when the commit sees such a cut before it returns, it fails the same way.)
    ///
    /// - Throws: ``WALError/truncated(after:)``, ``WALError/logReset(to:)`` as above; otherwise
    ///   as ``append(_:tenant:vshard:payload:)`` and ``waitUntilDurable(_:)``.
    @discardableResult
    public func commit<Payload: Collection<UInt8>>(_ type: RecordType, tenant: UInt32 = 0, vshard: UInt16 = 0,
                                                  payload: Payload) throws(WALError) -> LSN {
        let start = DispatchTime.now().uptimeNanoseconds
        let ticket = try appendTicket(type, tenant: tenant, vshard: vshard, payload: payload)
        TestHooks.commitAppended(configuration.directory, ticket.lsn)
        try logWriter.waitUntilDurable(ticket.lsn, .record(ticket))
        logWriter.metrics.commitDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
        return ticket.lsn
    }

    /// Appends a record and suspends until it is durable; returns its LSN. The wait never
    /// blocks a thread (the WAL's flusher thread does the I/O); the append itself may wait
    /// briefly when both buffers are full. A commit racing a cut fails as the blocking
    /// ``commit(_:tenant:vshard:payload:)-3t0un`` does.
    @discardableResult
    public func commit<Payload: Collection<UInt8> & Sendable>(_ type: RecordType, tenant: UInt32 = 0, vshard: UInt16 = 0,
                                                             payload: Payload) async throws(WALError) -> LSN {
        let start = DispatchTime.now().uptimeNanoseconds
        let ticket = try appendTicket(type, tenant: tenant, vshard: vshard, payload: payload)
        TestHooks.commitAppended(configuration.directory, ticket.lsn)
        try await logWriter.durable(ticket.lsn, .record(ticket))
        logWriter.metrics.commitDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
        return ticket.lsn
    }

    /// Makes every record appended so far durable.
    public func sync() throws(WALError) {
        try logWriter.sync()
    }

    /// Blocks until every record up to `lsn` is durable. Flushes in the calling thread when no
    /// flush is in progress.
    ///
    /// It knows the record only by its LSN: when a cut removes `lsn` while the call waits, or
    /// a ``reset(to:)`` removed it before (an `lsn` at or below the reset's), it fails with the
    /// cut's error; but once a cut has handed `lsn` to a new record, it waits for that one. A
    /// caller that appends and waits while another thread may cut uses ``commit(_:tenant:vshard:payload:)-3t0un``,
    /// which knows its own record.
    ///
    /// - Throws: ``WALError/lsnNotAppended(lsn:nextLSN:)`` for an LSN not appended yet,
    ///   ``WALError/truncated(after:)`` / ``WALError/logReset(to:)`` as above,
    ///   ``WALError/failed(_:)`` when the flush failed, ``WALError/closed``.
    public func waitUntilDurable(_ lsn: LSN) throws(WALError) {
        try logWriter.waitUntilDurable(lsn, .lsn)
    }

    /// Suspends until every record up to `lsn` is durable, without blocking a thread.
    ///
    /// - Throws: as ``waitUntilDurable(_:)``.
    public func durable(_ lsn: LSN) async throws(WALError) {
        try await logWriter.durable(lsn, .lsn)
    }

    /// Starts making every record up to `lsn` durable and returns at once: the WAL's flusher
    /// thread writes and syncs in the background. For streaming writers that keep appending
    /// while the previous batch is synced; ``durableLSN``, ``waitUntilDurable(_:)`` or
    /// ``durable(_:)`` tell when it is done.
    ///
    /// - Throws: ``WALError/lsnNotAppended(lsn:nextLSN:)``, ``WALError/closed``, ``WALError/failed(_:)``.
    public func requestDurability(upTo lsn: LSN) throws(WALError) {
        try logWriter.requestDurability(upTo: lsn)
    }

    /// The LSN the next appended record will get.
    public var nextLSN: LSN { logWriter.nextLSN }

    /// The highest LSN known to be durable (0 when none is). Every record up to it survives a
    /// crash.
    public var durableLSN: LSN { logWriter.durableLSN }

    /// The first LSN of the active segment.
    public var activeSegmentFirstLSN: LSN { logWriter.activeSegmentFirstLSN }

    /// Syncs everything, trims the active segment to its last record, releases the files and
    /// the ring, and stops the flusher thread. Later calls throw ``WALError/closed``. Closing
    /// twice is harmless; a WAL that is deinitialised unclosed is closed then (errors ignored).
    public func close() throws(WALError) {
        defer { lock.release() }
        try logWriter.close()
    }

    /// Seals the active segment now and starts a new one at ``nextLSN``, whatever its size.
    /// Does nothing when the active segment holds no record yet.
    public func rollSegment() throws(WALError) {
        try logWriter.rollSegment()
    }

    // MARK: Reading

    /// Streams the records with LSN ≥ `lsn`, oldest first, reading segments as it goes.
    /// Safe to use while other threads append: it sees a prefix of the log.
    ///
    /// When truncation has removed records at or above `lsn`, the stream starts at the first
    /// record still there (`records(from: 1)` means "everything retained"): a caller that needs
    /// continuity compares the first LSN it gets. A reader that truncation overtakes while it
    /// runs ends with ``WALError/truncatedWhileReading(segment:lsn:)``; keep the checkpoint
    /// given to ``truncate(before:)`` at or below every running reader's position.
    public func records(from lsn: LSN = 1) -> RecordStream {
        RecordStream(cursor: ReplayCursor(directory: configuration.directory, from: lsn, recordTypes: configuration.recordTypes,
                                          keyRing: configuration.encryption, requirePlaintext: configuration.requirePlaintext))
    }

    /// The durable records with LSN ≥ `lsn` as an `AsyncSequence`; with `follow`, it then
    /// waits for each new record to become durable and yields it (live tailing, for
    /// replication and change feeds; see ``LiveRecordStream``). Without `follow` it ends at
    /// the durable end of the log. Any number of streams may run beside the writers.
    public func records(from lsn: LSN, follow: Bool) -> LiveRecordStream {
        LiveRecordStream(directory: configuration.directory, from: lsn, recordTypes: configuration.recordTypes,
                         keyRing: configuration.encryption, requirePlaintext: configuration.requirePlaintext,
                         follow: follow, source: .wal(logWriter))
    }

    /// The records of a WAL directory from `lsn` on, without opening it for writing; with
    /// `follow`, then each new record as another process writes it, looking again every
    /// `pollInterval` (`wal dump --follow`). Another process's durability cannot be observed:
    /// records are yielded once completely written, so a crash of that writer before its next
    /// sync could take the last ones back. In-process, use the instance method, which yields
    /// only durable records and needs no polling.
    public static func records(in directory: String, from lsn: LSN, follow: Bool, pollInterval: Duration = .milliseconds(100),
                               recordTypes: Set<RecordType> = RecordType.seedTypes,
                               keyRing: KeyRing? = nil, requirePlaintext: Bool = false) -> LiveRecordStream {
        LiveRecordStream(directory: directory, from: lsn, recordTypes: recordTypes, keyRing: keyRing,
                         requirePlaintext: requirePlaintext, follow: follow, source: .poll(pollInterval))
    }

    /// Reads at most `limit` records with LSN ≥ `lsn`.
    public func records(from lsn: LSN, limit: Int) throws(WALError) -> RecordPage {
        try Self.records(in: configuration.directory, from: lsn, limit: limit, recordTypes: configuration.recordTypes,
                         keyRing: configuration.encryption, requirePlaintext: configuration.requirePlaintext)
    }

    /// The record with LSN `lsn`, read without scanning its segment from the start (a sparse
    /// index per segment; see docs/PERFORMANCE.md for what a read costs); nil when the log has
    /// no such record (truncated away below the first retained record, or not appended yet).
    /// A record appended but not yet durable is made durable first: a read never returns a
    /// record that a crash could take back.
    ///
    /// - Throws: ``WALError/invalidArgument(_:)`` for an LSN outside ``LSNDomain``; the errors
    ///   of replay for damage.
    public func record(at lsn: LSN) throws(WALError) -> WALRecord? {
        guard LSNDomain.contains(lsn) else {
            throw WALError.invalidArgument("LSN \(lsn) is outside \(LSNDomain.first)...\(LSNDomain.last)")
        }
        return try records(from: lsn, through: lsn).first
    }

    /// The records with LSN in `lo...hi` that the log holds, in order: those truncated away
    /// below the first retained record and those not appended yet are left out, so the result
    /// may be shorter than the range (empty when `lo > hi`). Reads start at the nearest index
    /// entry, not at the segment's start; records not yet durable in the range are made
    /// durable first. Every record is checked as replay checks it (CRC, LSN order, required
    /// types, authentication). Unlike replay, a record of an unknown type without the required
    /// bit is returned, not skipped: the caller named its LSN.
    public func records(from lo: LSN, through hi: LSN) throws(WALError) -> [WALRecord] {
        let lo = max(lo, LSNDomain.first), hi = min(hi, LSNDomain.last)  // no record lies outside
        while true {
            // Read like a seqlock reader: a cut that ran meanwhile (its generation changed, or is
            // odd: under way) may have changed the bytes read, so read again.
            let generation = logWriter.cutGeneration
            let last = min(hi, nextLSN - 1)
            guard lo <= last else { return [] }
            if last > durableLSN { try logWriter.waitUntilDurable(last, .prefix) }
            let read = Result { () throws(WALError) in try pointReader.records(from: lo, through: last, generation: generation) }
            if generation % 2 == 0, logWriter.cutGeneration == generation { return try read.get() }
            sched_yield()
        }
    }

    /// The LSN of the first record the log holds (the first segment's first LSN); ``nextLSN``
    /// when it holds none.
    public var firstLSN: LSN {
        get throws(WALError) {
            guard let first = try segments().first, first.firstLSN < nextLSN else { return nextLSN }
            return first.firstLSN
        }
    }

    /// Streams the records of a WAL directory without opening it for writing (nothing is repaired).
    /// With a key ring, encrypted records come back decrypted; without one, as stored (or, with
    /// `requirePlaintext`, replay throws ``WALError/encryptedRecordWithoutKey(segment:lsn:)``).
    public static func records(in directory: String, from lsn: LSN = 1,
                               recordTypes: Set<RecordType> = RecordType.seedTypes,
                               keyRing: KeyRing? = nil, requirePlaintext: Bool = false) -> RecordStream {
        RecordStream(cursor: ReplayCursor(directory: directory, from: lsn, recordTypes: recordTypes, keyRing: keyRing,
                                          requirePlaintext: requirePlaintext))
    }

    /// Reads at most `limit` records of a WAL directory without opening it for writing.
    public static func records(in directory: String, from lsn: LSN, limit: Int,
                               recordTypes: Set<RecordType> = RecordType.seedTypes,
                               keyRing: KeyRing? = nil, requirePlaintext: Bool = false) throws(WALError) -> RecordPage {
        precondition(limit >= 0, "limit must not be negative")
        var stream = records(in: directory, from: lsn, recordTypes: recordTypes, keyRing: keyRing, requirePlaintext: requirePlaintext)
        var page: [WALRecord] = []
        page.reserveCapacity(min(limit, 4096))
        while page.count < limit, let record = try stream.next() {
            page.append(record)
        }
        var hasMore = false
        if page.count == limit { hasMore = try stream.next() != nil }
        return RecordPage(records: page, hasMore: hasMore)
    }

    // MARK: Segments

    /// The segment files, oldest first.
    public func segments() throws(WALError) -> [SegmentInfo] {
        try SegmentDirectory.discover(configuration.directory)
    }

    /// Bytes on disk across all segments.
    public var totalSize: Int64 {
        get throws(WALError) { try segments().reduce(0) { $0 + $1.size } }
    }

    /// Deletes the sealed segments whose records all lie below `checkpoint` (the seed's rule:
    /// a segment goes when the next one starts at or below `checkpoint`). The active segment is
    /// never deleted. The directory is fsynced after deletions.
    public func truncate(before checkpoint: LSN) throws(WALError) -> TruncationResult {
        try logWriter.withActiveSegment { (activeFirstLSN) throws(WALError) -> TruncationResult in
            try Truncation.truncate(directory: self.configuration.directory, before: checkpoint,
                                    activeFirstLSN: activeFirstLSN)
        }
    }

    /// Removes every record above `lsn`; the next append gets `lsn` + 1 — what a consensus
    /// log does when a new leader's entries conflict with a suffix of ours.
    ///
    /// Crash-atomic: a crash at any point during the call leaves, after reopening, either the
    /// whole log as it was or exactly the cut one; once the call has returned, no removed
    /// record can come back (docs/FORMAT.md, "Cutting the log's end"). The cut may fall in the
    /// active segment, in a sealed one (the segments after it are deleted) or on a segment
    /// boundary; an `lsn` below the first retained record empties the log, as ``reset(to:)``
    /// does. Nothing happens when no record lies above `lsn`.
    ///
    /// Appends and flushes wait while the cut runs. Commits for records above `lsn` that are
    /// not yet durable fail with ``WALError/truncated(after:)`` (their records are not kept),
    /// whether they were already waiting or had only appended — never an acknowledgement for a
    /// record the cut removed, even once a later record has its LSN; records still buffered
    /// above it are dropped. ``waitUntilDurable(_:)`` knows only LSNs: see its doc. A live tailer (``records(from:follow:)``) that had read
    /// past `lsn` ends with ``WALError/truncated(after:)``; one at or below `lsn` + 1 goes on.
    ///
    /// - Throws: ``WALError/closed``, ``WALError/failed(_:)``, or the I/O error that stopped the
    ///   cut — which also fails the WAL: reopening finishes the cut.
    public func truncate(after lsn: LSN) throws(WALError) {
        try checkCutLSN(lsn)
        try logWriter.rewrite(LogCut(kind: .truncateAfter, lsn: lsn))
    }

    /// Empties the log: every record goes, and the next append gets `lsn` + 1, whatever the
    /// log held before (below, inside or above `lsn`) — for installing a snapshot that covers
    /// everything up to `lsn`. Crash-atomic as ``truncate(after:)``. Commits waiting for
    /// records not yet durable fail with ``WALError/logReset(to:)`` — at any LSN, since no
    /// record survives a reset — and so does every later ``waitUntilDurable(_:)`` for an LSN at
    /// or below `lsn`; a live tailer not positioned exactly at `lsn` + 1 ends with that error.
    ///
    /// The log it leaves — one empty segment named `lsn` + 1 — is one the seed crate
    /// (`nodedb-wal`) cannot go on writing: it takes its next LSN from the last record, so it
    /// would start again at LSN 1 inside that segment. The same holds after a
    /// ``truncate(after:)`` that keeps no record. This library continues such a log correctly
    /// (docs/FORMAT.md, "Cutting the log's end").
    public func reset(to lsn: LSN) throws(WALError) {
        try checkCutLSN(lsn)
        try logWriter.rewrite(LogCut(kind: .reset, lsn: lsn))
    }

    private func checkCutLSN(_ lsn: LSN) throws(WALError) {
        guard lsn < LSNDomain.last else {
            throw WALError.invalidArgument("LSN \(lsn) leaves no LSN for the next record (the last is \(LSNDomain.last))")
        }
    }

    /// How many times ``truncate(after:)`` or ``reset(to:)`` changed this WAL's end since it
    /// was opened. A paged reader (``records(from:limit:)``) that keeps a position between
    /// calls notes it with the position: when it has changed, the LSNs above the cut may name
    /// new records, and the reader checks where the log now ends before going on.
    public var cutCount: Int { Int(logWriter.cutGeneration / 2) }

    /// Moves a single-file WAL of the seed's legacy layout into `directory` as its first
    /// segment (removed instead when empty). Returns the new segment's path, if any.
    public static func migrateLegacy(file: String, into directory: String) throws(WALError) -> String? {
        try LegacyMigration.migrate(legacyFile: file, into: directory)
    }

    // MARK: Internals

    /// No live tailer waits, and cancelled ones left nothing behind.
    var watchersAreIdle: Bool { logWriter.watchersAreIdle }

    /// The flusher thread's kernel id; nil once closed.
    var flusherThreadID: pid_t? { logWriter.flusherThreadID }
}
