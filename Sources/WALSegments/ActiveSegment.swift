import Glibc
import Logging
import WALFormat
import WALIO
import WALEncryption

/// Where a log ends, as the reader that checked it found it: the last segment, the end of its
/// last valid record, the LSN due next. ``ActiveSegment`` resumes writing there.
package struct SegmentTail {
    /// The last segment.
    package var segment: SegmentInfo
    /// The end of its last valid record.
    var end: Int64
    /// The LSN the next record gets.
    var nextLSN: LSN
    /// The file's size when it was read.
    var fileSize: Int64
    /// The segment's encryption preamble, if it has one.
    var preamble: SegmentPreamble?
    /// Whether the segment holds at least one record.
    var hasRecords: Bool { nextLSN > segment.firstLSN }

    package init(segment: SegmentInfo, end: Int64, nextLSN: LSN, fileSize: Int64, preamble: SegmentPreamble? = nil) {
        self.segment = segment
        self.end = end
        self.nextLSN = nextLSN
        self.fileSize = fileSize
        self.preamble = preamble
    }
}

/// The one owner of the segment lifecycle: resuming the log at its tail (cut and made
/// durable), creating a segment (with its preamble and cipher when encrypting), rolling over
/// to the next (seal → the spare or a new file → rename → open → preamble/cipher → directory
/// fsync), sealing or closing the last one, and the preallocated spare in between.
///
/// Not thread-safe: the WAL calls it under its lock, holding the I/O role.
package final class ActiveSegment {
    /// What the segments need of the WAL's configuration.
    package struct Settings {
        var directory: String
        var segmentTargetSize: Int64
        var bufferSize: Int
        /// Buffers in each writer's ring: one more than the flushes kept in flight.
        var buffers: Int = 2
        var directIO: DirectIOPolicy
        var preallocation: SegmentPreallocation
        var encryption: KeyRing?
        var logger: Logger

        package init(directory: String, segmentTargetSize: Int64, bufferSize: Int, buffers: Int = 2, directIO: DirectIOPolicy,
                     preallocation: SegmentPreallocation, encryption: KeyRing? = nil, logger: Logger) {
            self.directory = directory
            self.segmentTargetSize = segmentTargetSize
            self.bufferSize = bufferSize
            self.buffers = buffers
            self.directIO = directIO
            self.preallocation = preallocation
            self.encryption = encryption
            self.logger = logger
        }
    }

    /// How a rollover failed.
    package enum RolloverFailure: Error {
        /// Nothing of the log changed (no next file could be had): the active segment stays,
        /// its size limit is soft, and a later append tries again.
        case recoverable(WALError)
        /// Sealing or the directory fsync failed: nothing after it can be proven durable.
        case fatal(WALError)
    }

    /// The segment being appended to.
    @exclusivity(unchecked) package private(set) var writer: SegmentWriter
    let engine: IOEngine
    private let settings: Settings
    private let preallocator: Preallocator?
    /// Decided once: after a fallback, later segments open buffered without asking (and logging) again.
    private let directIO: DirectIOPolicy
    /// The preallocator was asked for the next segment's file.
    @exclusivity(unchecked) private var spareRequested = false
    /// After a rollover failed for want of a next file: the logical end from which the next
    /// attempt is made. Until then appends go on in the active segment (its size limit is
    /// soft), so a lasting failure costs one failed append per retry, not every append.
    @exclusivity(unchecked) private var retryRolloverAt: Int64?
    /// How much the active segment grows after a failed rollover before the next attempt.
    var rolloverRetryDistance: Int64 { TestHooks.rolloverRetryDistance(settings.directory) ?? 64 * 1024 }

    /// Opens the log for writing: resumes the last segment at `tail` (everything after its
    /// last valid record cut off, and the cut made durable) or, with no segment, creates the
    /// first. An encrypted log never appends to a segment written before this open: a torn
    /// record's LSN would be encrypted again under the same epoch (a reused GCM nonce), and
    /// turning encryption on or rotating keys takes effect from a new segment. The old one is
    /// kept (sealed) when it holds records, replaced otherwise. Ends with a directory fsync.
    package init(resuming tail: SegmentTail?, settings: Settings, engine: IOEngine) throws(WALError) {
        self.settings = settings
        self.engine = engine
        try Preallocator.removeLeftover(in: settings.directory)
        let writer = try Self.resume(tail, settings: settings, directIO: settings.directIO, engine: engine)
        try Syscall.fsyncDirectory(settings.directory)
        self.writer = writer
        directIO = writer.file.isDirect ? settings.directIO : .disabled
        preallocator = settings.preallocation == .none ? nil
            : Preallocator(directory: settings.directory, size: settings.segmentTargetSize,
                           mode: settings.preallocation, direct: writer.file.isDirect)
    }

    /// The writer that continues the log at `tail` (see ``init(resuming:settings:engine:)``);
    /// the caller fsyncs the directory.
    ///
    /// - Parameter synced: the file at `tail` is durable as it is (a cut has just fsynced it).
    private static func resume(_ tail: SegmentTail?, settings: Settings, directIO: DirectIOPolicy,
                               engine: IOEngine, synced: Bool = false) throws(WALError) -> SegmentWriter {
        guard let tail else {
            return try create(firstLSN: 1, settings: settings, directIO: directIO, engine: engine)
        }
        let last = tail.segment
        let file = try SegmentFile.open(path: last.path, create: false, directIO: directIO, logger: settings.logger)
        do throws(WALError) {
            if tail.end != tail.fileSize {
                settings.logger.info("cut the last segment after its last valid record", metadata: [
                    "segment": "\(last.name)", "end": "\(tail.end)", "removedBytes": "\(tail.fileSize - tail.end)",
                ])
                try Syscall.ftruncate(file.descriptor, length: tail.end, path: file.path)
            }
            // Always (unless just done): records that reached the page cache before a crash
            // may not be on disk yet.
            if !synced || tail.end != tail.fileSize { try Syscall.fsync(file.descriptor, path: file.path) }
            if settings.encryption != nil || tail.preamble != nil {
                file.close()
                // A segment without records is replaced under its name (never unlinked first:
                // after a reset it is the only segment, and its name holds the next LSN).
                return try create(firstLSN: tail.nextLSN, settings: settings, directIO: directIO, engine: engine,
                                  replacing: !tail.hasRecords)
            }
            return try SegmentWriter(file: file, engine: engine, firstLSN: last.firstLSN, nextLSN: tail.nextLSN,
                                     end: tail.end, bufferSize: settings.bufferSize, buffers: settings.buffers)
        } catch {
            file.close()
            throw error
        }
    }

    /// Cuts the log's end (``LogCut``): everything appended made durable and the active
    /// segment closed, the intent recorded, the cut applied, and the log resumed where the
    /// cut leaves it. A failure part-way leaves the intent on disk (reopening finishes the
    /// cut) and the caller must fail the WAL: the active segment is closed by then.
    package func rewrite(_ cut: LogCut) throws(WALError) {
        try writer.trimAndSync()
        writer.closeWithoutSync()
        try cut.record(in: settings.directory)
        let tail = try cut.apply(in: settings.directory)
        writer = try Self.resume(tail, settings: settings, directIO: directIO, engine: engine, synced: true)
        // An encrypted log continues in a new segment, which must be in the directory durably.
        if settings.encryption != nil || tail.preamble != nil { try Syscall.fsyncDirectory(settings.directory) }
        retryRolloverAt = nil
        settings.logger.info("cut the log", metadata: ["kind": "\(cut.kind)", "lsn": "\(cut.lsn)"])
    }

    /// The active segment has reached its target size and holds a record: the next append
    /// should roll over first.
    package var isFull: Bool {
        writer.logicalEnd >= max(settings.segmentTargetSize, retryRolloverAt ?? 0) && writer.nextLSN > writer.firstLSN
    }

    /// After an append: past half the target size, the next segment's file is prepared in the
    /// background.
    package func appended() {
        if !spareRequested, let preallocator, writer.logicalEnd >= settings.segmentTargetSize / 2 {
            spareRequested = true
            preallocator.startIfIdle()
        }
    }

    /// Seals the active segment and makes the next one active, provided the active one holds
    /// a record. Returns the sealed segment's durable LSN.
    ///
    /// Order matters for crashes and failures: (1) the active segment is made durable and cut
    /// to its last record; (2) the next file is obtained — the preallocated spare renamed, or
    /// a new file — and if that fails (ENOSPC, EMFILE) nothing of the log changed: no
    /// descriptor of the attempt is left, its file (a renamed spare, or a file created) is
    /// unlinked and the directory fsynced *before* appends go on in the old segment — else a
    /// crash could keep the new name but not its removal, and the log would have a segment
    /// named inside the old one's records (refused at open). If that removal cannot be made
    /// durable, the failure is fatal. The next attempt waits until the segment has grown by
    /// another ``rolloverRetryDistance``; (3) the old file is closed and the directory fsynced.
    /// A crash at any point leaves a log that replays in full.
    package func roll() throws(RolloverFailure) {
        let old = writer
        guard old.nextLSN > old.firstLSN else { return }
        do throws(WALError) {
            try old.trimAndSync()
        } catch {
            throw .fatal(error)
        }
        let next: SegmentWriter
        do throws(WALError) {
            next = try nextSegment(firstLSN: old.nextLSN)
        } catch {
            // Whatever the attempt left under the next segment's name goes, durably.
            do throws(WALError) {
                try removeDurably(SegmentDirectory.path(settings.directory, firstLSN: old.nextLSN))
            } catch let cleanup {
                throw .fatal(cleanup)
            }
            // The spare (if any) is used up: the retry creates a plain file rather than
            // preparing another spare that would fail the same way.
            spareRequested = true
            retryRolloverAt = old.logicalEnd + rolloverRetryDistance
            throw .recoverable(error)
        }
        spareRequested = false
        retryRolloverAt = nil
        old.closeWithoutSync()  // trimmed and synced above
        writer = next
        do throws(WALError) {
            try Syscall.fsyncDirectory(settings.directory)
        } catch {
            throw .fatal(error)
        }
        settings.logger.debug("rolled to a new segment", metadata: ["firstLSN": "\(next.firstLSN)"])
    }

    /// The next segment's writer: the prepared spare renamed into place, or a new file.
    private func nextSegment(firstLSN: LSN) throws(WALError) -> SegmentWriter {
        let path = SegmentDirectory.path(settings.directory, firstLSN: firstLSN)
        guard let spare = try preallocator?.take() else {
            return try Self.create(firstLSN: firstLSN, settings: settings, directIO: directIO, engine: engine)
        }
        do throws(WALError) {
            try Syscall.rename(spare, path)
        } catch {
            try? Syscall.unlink(spare)  // the retry creates a plain file; leave nothing behind
            throw error
        }
        // A failure from here on leaves the renamed spare under `path`: roll() removes it.
        let file = try SegmentFile.open(path: path, create: false, directIO: directIO, logger: settings.logger)
        do throws(WALError) {
            return try Self.writer(for: file, firstLSN: firstLSN, settings: settings, engine: engine)
        } catch {
            file.close()
            throw error
        }
    }

    /// Unlinks `path` if it exists and fsyncs the directory: the removal survives a crash.
    private func removeDurably(_ path: String) throws(WALError) {
        if try Syscall.entryType(path) != nil { try Syscall.unlink(path) }
        try Syscall.fsyncDirectory(settings.directory)
    }

    /// Makes everything durable and cuts the active segment to its last record; closes it.
    package func seal() throws(WALError) {
        preallocator?.discard()
        try writer.seal()
    }

    /// Closes the active segment without syncing (after a failure) and drops the spare.
    package func closeWithoutSync() {
        preallocator?.discard()
        writer.closeWithoutSync()
    }

    /// Creates a new, empty segment file and its writer.
    ///
    /// With `replacing`, a segment of that name exists (empty of records) and is replaced
    /// atomically: the new file is created under a temporary name and renamed over it, so the
    /// name — which carries the log's next LSN when it is the only segment, as after a reset —
    /// never disappears, whatever a crash leaves.
    private static func create(firstLSN: LSN, settings: Settings, directIO: DirectIOPolicy,
                               engine: IOEngine, replacing: Bool = false) throws(WALError) -> SegmentWriter {
        let path = SegmentDirectory.path(settings.directory, firstLSN: firstLSN)
        let file: SegmentFile
        if replacing {
            let temporary = path + ".new"
            if try Syscall.entryType(temporary) != nil { try Syscall.unlink(temporary) }
            Syscall.close(try Syscall.open(temporary, flags: O_RDWR | O_CREAT | O_EXCL))
            do throws(WALError) {
                try Syscall.rename(temporary, path)
            } catch {
                try? Syscall.unlink(temporary)
                throw error
            }
            // Opened under its final name, which every later write and sync names.
            file = try SegmentFile.open(path: path, create: false, directIO: directIO, logger: settings.logger)
        } else {
            file = try SegmentFile.open(path: path, create: true, exclusive: true, directIO: directIO, logger: settings.logger)
        }
        do throws(WALError) {
            return try writer(for: file, firstLSN: firstLSN, settings: settings, engine: engine)
        } catch {
            file.close()
            if !replacing { try? Syscall.unlink(path) }  // a replacing segment keeps its name
            throw error
        }
    }

    /// A writer for a new, empty segment file: with a fresh preamble and cipher when encrypting.
    private static func writer(for file: SegmentFile, firstLSN: LSN, settings: Settings,
                               engine: IOEngine) throws(WALError) -> SegmentWriter {
        var preamble: SegmentPreamble?
        var cipher: RecordCipher?
        if let ring = settings.encryption {
            let fresh = SegmentPreamble.fresh(keyID: ring.current.id)
            preamble = fresh
            cipher = RecordCipher(key: ring.current, preamble: fresh)
        }
        return try SegmentWriter(file: file, engine: engine, firstLSN: firstLSN, nextLSN: firstLSN, end: 0,
                                 bufferSize: settings.bufferSize, buffers: settings.buffers, preamble: preamble, cipher: cipher)
    }
}
