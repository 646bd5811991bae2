import Glibc
import Logging
import Synchronization

/// A write-ahead log kept as a directory of segment files, byte-compatible with the seed's
/// (nodedb-wal) format.
///
/// ```swift
/// let wal = try SegmentedWAL(configuration: .init(directory: "/var/lib/db/wal"))
/// let lsn = try wal.append(.put, tenant: 1, vshard: 0, payload: bytes)
/// try wal.sync()                       // everything appended so far is durable
/// var records = wal.records(from: checkpoint)
/// while let record = try records.next() { apply(record) }
/// _ = try wal.truncate(before: checkpoint)
/// ```
///
/// All methods may be called from any thread; calls are serialised by a lock.
///
/// Once a write or sync has failed, the WAL cannot prove what reached the disk, so every
/// later call that writes throws ``WALError/failed(_:)`` with the original error: reopen the
/// directory to recover what is on disk.
public final class SegmentedWAL: Sendable {
    /// The configuration the WAL was opened with.
    public let configuration: WALConfiguration
    /// The engine moving the bytes.
    public let engine: IOEngineKind
    /// Whether segment files are written with O_DIRECT.
    public let isDirectIO: Bool
    private let directIOPolicy: DirectIOPolicy

    /// Everything mutable; only touched inside `state.withLock`, which is what makes the
    /// non-Sendable writer safe to share.
    private struct State: ~Copyable, @unchecked Sendable {
        var writer: SegmentWriter?
        var failure: WALError?
        var isClosed = false
        /// The preallocator was asked for the next segment's file.
        var spareRequested = false
        /// Set while a step runs whose failure leaves the log untouched (preparing the next
        /// segment's file): its error is reported without making the WAL refuse further work.
        var failureIsRecoverable = false
    }

    private let state: Mutex<State>
    private let ioEngine: UnsafeTransfer<IOEngine>
    private let preallocator: Preallocator?

    /// Opens the WAL in `configuration.directory`, creating it when missing.
    ///
    /// The last segment is scanned to its last valid record; anything after that record (a
    /// torn write, stale bytes) is cut off and the cut made durable before this returns.
    public init(configuration: WALConfiguration) throws(WALError) {
        try configuration.validate()
        self.configuration = configuration
        let logger = configuration.logger
        let directory = configuration.directory

        if let type = try Syscall.fileType(directory), type != S_IFDIR {
            throw WALError.invalidConfiguration("\(directory) exists and is not a directory")
        }
        try Syscall.makeDirectories(directory)
        if let legacy = configuration.legacyFile,
           let migrated = try LegacyMigration.migrate(legacyFile: legacy, into: directory) {
            logger.info("migrated legacy WAL file", metadata: ["from": "\(legacy)", "to": "\(migrated)"])
        }

        let engine = try EngineSelection.make(configuration.engine, syncMethod: configuration.ioUringSyncMethod, logger: logger)
        try Preallocator.removeLeftover(in: directory)
        let segments = try SegmentDirectory.discover(directory)
        let writer: SegmentWriter
        if let last = segments.last {
            let file = try SegmentFile.open(path: last.path, create: false, directIO: configuration.directIO, logger: logger)
            let tail = try Recovery.scanTail(of: file, firstLSN: last.firstLSN, engine: engine)
            if tail.end != tail.fileSize {
                logger.info("cut the last segment after its last valid record", metadata: [
                    "segment": "\(last.name)", "end": "\(tail.end)", "removedBytes": "\(tail.fileSize - tail.end)",
                ])
            }
            try Recovery.repair(file, tail: tail)
            if configuration.encryption != nil || tail.preamble != nil {
                // Encrypted logs never append to a segment written before this open: a torn
                // record's LSN would be encrypted again under the same epoch (a reused GCM
                // nonce), and turning encryption on or rotating keys takes effect from a new
                // segment. The old one is kept (sealed) when it holds records, replaced otherwise.
                if tail.hasRecords {
                    try Syscall.fsync(file.descriptor, path: file.path)
                    file.close()
                } else {
                    file.close()
                    try Syscall.unlink(last.path)
                }
                writer = try Self.createSegment(firstLSN: tail.nextLSN, configuration: configuration,
                                                directIO: configuration.directIO, engine: engine)
            } else {
                writer = try SegmentWriter(file: file, engine: engine, firstLSN: last.firstLSN, nextLSN: tail.nextLSN,
                                           end: tail.end, bufferSize: configuration.bufferSize)
            }
        } else {
            writer = try Self.createSegment(firstLSN: 1, configuration: configuration, directIO: configuration.directIO,
                                            engine: engine)
        }
        try Syscall.fsyncDirectory(directory)

        self.engine = engine.kind
        self.isDirectIO = writer.file.isDirect
        // Decided once: after a fallback, later segments open buffered without asking (and logging) again.
        self.directIOPolicy = writer.file.isDirect ? configuration.directIO : .disabled
        self.ioEngine = UnsafeTransfer(engine)
        self.preallocator = configuration.preallocation == .none ? nil
            : Preallocator(directory: directory, size: configuration.segmentTargetSize, mode: configuration.preallocation,
                           direct: writer.file.isDirect)
        self.state = Mutex(State(writer: writer))
        logger.debug("WAL opened", metadata: [
            "directory": "\(directory)", "segments": "\(max(segments.count, 1))",
            "nextLSN": "\(writer.nextLSN)", "engine": "\(engine.kind)", "directIO": "\(writer.file.isDirect)",
        ])
    }

    deinit {
        state.withLock { state in
            if let writer = state.writer, !state.isClosed, state.failure == nil {
                try? writer.seal()
            }
            state.writer?.abandon()
        }
        preallocator?.discard()
        ioEngine.value.shutdown()
    }

    // MARK: Writing

    /// Appends a record to the buffer and returns its LSN. The record is durable after the
    /// next ``sync()``. When the active segment has reached ``WALConfiguration/segmentTargetSize``,
    /// it is sealed and a new segment started first.
    ///
    /// - Throws: ``WALError/payloadTooLarge(size:limit:)`` (the WAL stays usable),
    ///   ``WALError/closed``, ``WALError/failed(_:)``, or the I/O error of a flush.
    @discardableResult
    public func append<Payload: Collection<UInt8>>(_ type: RecordType, tenant: UInt32 = 0, vshard: UInt16 = 0,
                                                  payload: Payload) throws(WALError) -> LSN {
        let stored = type.rawValue
        let contiguous = payload.withContiguousStorageIfAvailable { buffer in
            Result { () throws(WALError) -> LSN in
                try self.append(storedType: stored, tenant: tenant, vshard: vshard, payload: UnsafeRawBufferPointer(buffer))
            }
        }
        if let contiguous { return try contiguous.get() }
        let copy = Array(payload)
        return try copy.withUnsafeBytes { buffer in
            Result { () throws(WALError) -> LSN in
                try self.append(storedType: stored, tenant: tenant, vshard: vshard, payload: buffer)
            }
        }.get()
    }

    func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> LSN {
        guard payload.count <= RecordHeader.maxPayloadLength else {
            throw WALError.payloadTooLarge(size: payload.count, limit: RecordHeader.maxPayloadLength)
        }
        return try withState { (state) throws(WALError) -> LSN in
            let writer = try self.roll(&state, force: false)
            let lsn = try writer.append(storedType: storedType, tenant: tenant, vshard: vshard, payload: payload)
            if !state.spareRequested, let preallocator = self.preallocator,
               writer.logicalEnd >= self.configuration.segmentTargetSize / 2 {
                state.spareRequested = true
                preallocator.startIfIdle()
            }
            return lsn
        }
    }

    /// Makes every record appended so far durable (write, then fdatasync).
    public func sync() throws(WALError) {
        try withState { (state) throws(WALError) in try state.writer!.sync() }
    }

    /// The LSN the next appended record will get.
    public var nextLSN: LSN {
        state.withLock { $0.writer?.nextLSN ?? 0 }
    }

    /// The highest LSN known to be durable (0 when none is).
    public var durableLSN: LSN {
        state.withLock { $0.writer?.durableLSN ?? 0 }
    }

    /// The first LSN of the active segment.
    public var activeSegmentFirstLSN: LSN {
        state.withLock { $0.writer?.firstLSN ?? 0 }
    }

    /// Syncs everything, trims the active segment to its last record, and releases the files.
    /// Later calls throw ``WALError/closed``. Closing twice is harmless.
    public func close() throws(WALError) {
        try state.withLock { (state) throws(WALError) in
            guard !state.isClosed else { return }
            state.isClosed = true
            preallocator?.discard()
            guard let writer = state.writer else { return }
            state.writer = nil
            if state.failure != nil {
                writer.abandon()
                return
            }
            do throws(WALError) {
                try writer.seal()
            } catch {
                writer.abandon()
                throw error
            }
        }
    }

    /// Seals the active segment now and starts a new one at ``nextLSN``, whatever its size.
    /// Does nothing when the active segment holds no record yet.
    public func rollSegment() throws(WALError) {
        try withState { (state) throws(WALError) in
            _ = try self.roll(&state, force: true)
        }
    }

    // MARK: Reading

    /// Streams the records with LSN ≥ `lsn`, oldest first, reading segments as it goes.
    /// Safe to use while other threads append: it sees a prefix of the log.
    public func records(from lsn: LSN = 1) -> RecordStream {
        RecordStream(cursor: ReplayCursor(directory: configuration.directory, from: lsn, recordTypes: configuration.recordTypes,
                                          keyRing: configuration.encryption, requirePlaintext: configuration.requirePlaintext))
    }

    /// Reads at most `limit` records with LSN ≥ `lsn`.
    public func records(from lsn: LSN, limit: Int) throws(WALError) -> RecordPage {
        try Self.records(in: configuration.directory, from: lsn, limit: limit, recordTypes: configuration.recordTypes,
                         keyRing: configuration.encryption, requirePlaintext: configuration.requirePlaintext)
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
        try withState { (state) throws(WALError) -> TruncationResult in
            try Truncation.truncate(directory: self.configuration.directory, before: checkpoint,
                                    activeFirstLSN: state.writer!.firstLSN)
        }
    }

    /// Moves a single-file WAL of the seed's legacy layout into `directory` as its first
    /// segment (removed instead when empty). Returns the new segment's path, if any.
    public static func migrateLegacy(file: String, into directory: String) throws(WALError) -> String? {
        try LegacyMigration.migrate(legacyFile: file, into: directory)
    }

    // MARK: Internals

    /// Runs `body` under the lock with an open, healthy writer; any I/O failure makes the WAL
    /// refuse further work (the failure is sticky: after a failed fdatasync the kernel may have
    /// dropped the dirty pages, so retrying could report lost data as durable).
    private func withState<T>(_ body: (inout State) throws(WALError) -> T) throws(WALError) -> T {
        try state.withLock { (state) throws(WALError) -> T in
            if state.isClosed || state.writer == nil { throw WALError.closed }
            if let failure = state.failure { throw WALError.failed(failure) }
            do throws(WALError) {
                return try body(&state)
            } catch {
                let recoverable = state.failureIsRecoverable
                state.failureIsRecoverable = false
                if case .io = error, !recoverable {
                    state.failure = error
                    configuration.logger.error("WAL write path failed; refusing further writes", metadata: ["error": "\(error)"])
                }
                throw error
            }
        }
    }

    /// Seals the active segment and starts the next when the active one reached its target size
    /// (or always, with `force`), provided it holds a record. Must run under the lock.
    ///
    /// Order matters for crashes and failures: (1) the active segment is made durable and cut
    /// to its last record; (2) the next file is obtained — the preallocated spare renamed, or
    /// a new file — and if that fails (ENOSPC, EMFILE) the error is reported, the WAL stays
    /// usable and keeps appending to the active segment; (3) the old file is closed, the
    /// directory fsynced. A crash at any point leaves a log that replays in full.
    private func roll(_ state: inout State, force: Bool) throws(WALError) -> SegmentWriter {
        let writer = state.writer!
        guard force || writer.logicalEnd >= configuration.segmentTargetSize, writer.nextLSN > writer.firstLSN else { return writer }
        try writer.trimAndSync()

        state.failureIsRecoverable = true
        state.spareRequested = false
        let path = SegmentDirectory.path(configuration.directory, firstLSN: writer.nextLSN)
        let file: SegmentFile
        if let spare = try preallocator?.take() {
            try Syscall.rename(spare, path)
            do {
                file = try SegmentFile.open(path: path, create: false, directIO: directIOPolicy, logger: configuration.logger)
            } catch {
                try? Syscall.unlink(path)
                throw error
            }
        } else {
            file = try SegmentFile.open(path: path, create: true, exclusive: true, directIO: directIOPolicy,
                                        logger: configuration.logger)
        }
        let next: SegmentWriter
        do {
            next = try Self.makeWriter(file: file, firstLSN: writer.nextLSN, configuration: configuration,
                                       engine: ioEngine.value)
        } catch {
            file.close()
            try? Syscall.unlink(path)
            throw error
        }
        state.failureIsRecoverable = false

        writer.abandon()
        try Syscall.fsyncDirectory(configuration.directory)
        state.writer = next
        configuration.logger.debug("rolled to a new segment", metadata: ["firstLSN": "\(next.firstLSN)"])
        return next
    }

    private static func createSegment(firstLSN: LSN, configuration: WALConfiguration, directIO: DirectIOPolicy,
                                      engine: IOEngine) throws(WALError) -> SegmentWriter {
        let path = SegmentDirectory.path(configuration.directory, firstLSN: firstLSN)
        let file = try SegmentFile.open(path: path, create: true, exclusive: true, directIO: directIO,
                                        logger: configuration.logger)
        return try makeWriter(file: file, firstLSN: firstLSN, configuration: configuration, engine: engine)
    }

    /// A writer for a new, empty segment file: with a fresh preamble and cipher when encrypting.
    private static func makeWriter(file: SegmentFile, firstLSN: LSN, configuration: WALConfiguration,
                                   engine: IOEngine) throws(WALError) -> SegmentWriter {
        var preamble: SegmentPreamble?
        var cipher: RecordCipher?
        if let ring = configuration.encryption {
            let fresh = SegmentPreamble.fresh(keyID: ring.current.id)
            preamble = fresh
            cipher = RecordCipher(key: ring.current, epoch: fresh.epoch)
        }
        return try SegmentWriter(file: file, engine: engine, firstLSN: firstLSN, nextLSN: firstLSN, end: 0,
                                 bufferSize: configuration.bufferSize, preamble: preamble, cipher: cipher)
    }
}

/// Carries a non-Sendable reference whose every use is serialised by the WAL's lock.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
