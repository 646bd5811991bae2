import Glibc
import WALFormat
import WALIO
import WALEncryption
import WALSegments

/// Streams the records of a WAL directory in LSN order, enforcing the recovery rules: where
/// the log ends, and what is an error instead, is decided by ``EndOfLog`` (the same table
/// recovery and `verify` use). Besides those, per record and per segment:
///
/// | what is found | result |
/// |---|---|
/// | a segment named other than the LSN due | ``WALError/lsnGap(segment:expected:found:)`` (above), corruption (below) |
/// | an unknown type with the required bit | ``WALError/unknownRequiredRecordType(type:lsn:segment:)`` |
/// | an unknown type without it | skipped (its LSN still counts) |
///
/// Only one segment is open at a time and the scanner's window is reused, so memory is
/// bounded by the largest record. Segments are listed when the cursor starts: a cursor
/// running beside a writer sees a prefix of the log. Truncation never breaks a segment the
/// cursor has open (the open file outlives its name); a listed segment deleted before the
/// cursor reaches it ends the cursor with ``WALError/truncatedWhileReading(segment:lsn:)``.
/// A cut of the log's end recorded and not yet finished (``LogCut``: a crash during
/// `truncate(after:)` or `reset(to:)`) is honoured: the log ends where the cut says.
package final class ReplayCursor {
    private let directory: String
    private let recordTypes: Set<RecordType>
    private let from: LSN
    private var segments: [SegmentInfo]?
    private var index = 0
    private var scanner: SegmentScanner?
    private var isLastSegment = false
    private var expectedLSN: LSN?
    private var finished = false
    /// A cut of the log's end recorded but not finished (``LogCut``): the log ends at its
    /// last kept LSN whatever the segments still hold.
    private var lastKept: LSN = .max
    private let keyRing: KeyRing?
    private let requirePlaintext: Bool
    /// How the open segment's records decrypt.
    private var decryption: SegmentDecryption?

    /// Follow mode (live tailing): the end of the last segment is the live edge, not the end
    /// of the log — ``next()`` returns nil there and ``refresh()`` continues from it later.
    private let follow: Bool
    /// Where the last valid record of the open segment ends (where a live edge resumes).
    private var recordEnd: Int64 = 0
    /// Follow mode in the writer's process: the writer's cache of the active segment's newest
    /// bytes (registered while this cursor lives, so the writer fills it).
    private let liveEdge: LiveEdgeCache?

    /// Where the log ended, once ``next()`` returned nil at the end of the last segment (not
    /// in follow mode): the segment, the end of its last valid record, the LSN due next, the
    /// file's size and the segment's preamble. A writer resumes the log there.
    private(set) var logEnd: SegmentTail?

    /// - Parameter segments: the directory's segments when the caller has just listed them
    ///   (otherwise they are listed at the first read).
    package init(directory: String, from: LSN, recordTypes: Set<RecordType>, keyRing: KeyRing? = nil, requirePlaintext: Bool = false,
         follow: Bool = false, liveEdge: LiveEdgeCache? = nil, segments: [SegmentInfo]? = nil) {
        self.directory = directory
        self.segments = segments
        self.follow = follow
        self.liveEdge = liveEdge
        liveEdge?.register()
        self.from = from
        self.recordTypes = recordTypes
        self.keyRing = keyRing
        self.requirePlaintext = requirePlaintext
    }

    deinit {
        liveEdge?.unregister()
    }

    /// The next record at or above `from`, or nil at the end of the log.
    func next() throws(WALError) -> WALRecord? {
        try nextView { view in
            WALRecord(lsn: view.lsn, type: view.type, tenant: view.tenant, vshard: view.vshard,
                      payload: Array(view.payload), isEncrypted: view.isEncrypted)
        }
    }

    /// The next record at or above `from`, lent to `body` without copying its payload out of
    /// the read window (decrypted records lend their plaintext); nil at the end of the log.
    func nextView<R>(_ body: (RecordView) -> R) throws(WALError) -> R? {
        guard !finished else { return nil }
        let found: Found
        do {
            guard let next = try advance() else { return nil }
            found = next
        } catch {
            finished = true
            scanner = nil
            throw error
        }
        if let plaintext = found.plaintext {
            return plaintext.withUnsafeBytes { body(RecordView(found.header, type: found.type, payload: $0, isEncrypted: true)) }
        }
        return body(RecordView(found.header, type: found.type, payload: found.stored,
                               isEncrypted: RecordType.isEncrypted(storedValue: found.header.storedType)))
    }

    /// A record as found in the window: its stored payload, and the plaintext when it was decrypted.
    private struct Found {
        var header: RecordHeader
        var type: RecordType
        var stored: UnsafeRawBufferPointer
        var plaintext: [UInt8]?
    }

    private func advance() throws(WALError) -> Found? {
        let segments: [SegmentInfo]
        if let listed = self.segments {
            segments = listed
        } else {
            if let cut = try LogCut.pending(in: directory) { lastKept = cut.kind == .reset ? 0 : cut.lastKept }
            segments = try SegmentDirectory.discover(directory)
            self.segments = segments
        }
        while true {
            guard let scanner else {
                guard index < segments.count else { return follow ? nil : finish() }
                try openSegment(segments, at: index)
                continue
            }
            guard let due = expectedLSN else { preconditionFailure("a segment is open only with an LSN due in it") }
            let segment = segments[index]
            let place: EndOfLog.Place = !isLastSegment ? .sealed : follow ? .liveEdge : .last
            let following = index + 1 < segments.count ? segments[index + 1].firstLSN : nil
            let (step, decision) = try EndOfLog.next(from: scanner, due: due, segmentFirstLSN: segment.firstLSN, place: place,
                                                     nextSegmentFirstLSN: following)
            switch decision {
            case .record:
                break
            case .endOfSegment:
                if let offset = try scanner.firstNonZeroByte() {
                    throw WALError.corruption(segment: segment.name, offset: offset, lsn: due,
                                              reason: "data after the end of the segment's records")
                }
                closeSegment()
                continue
            case .endOfLog:
                return finish()
            case .liveEdge:
                return nil
            case .gap(let found):
                throw WALError.lsnGap(segment: segment.name, expected: due, found: found)
            case .corruption(let reason):
                let offset: Int64
                switch step {
                case .record(let header, _, _): offset = scanner.offset - Int64(header.recordLength)
                case .invalid(let at, _): offset = at
                case .end: offset = scanner.offset
                }
                throw WALError.corruption(segment: segment.name, offset: offset, lsn: due, reason: reason)
            }
            guard case .record(let header, let payload, _) = step else { preconditionFailure("decided .record") }
            if header.lsn > lastKept { return finish() }
            expectedLSN = due + 1
            recordEnd = scanner.offset
            if header.lsn < from { continue }
            let type = RecordType(rawValue: header.storedType)
            if !recordTypes.contains(type) {
                if type.isRequired {
                    throw WALError.unknownRequiredRecordType(type: type.rawValue, lsn: header.lsn, segment: segment.name)
                }
                continue
            }
            let encrypted = RecordType.isEncrypted(storedValue: header.storedType)
            let plaintext = encrypted ? try decrypt(payload, header: header, segment: segment.name) : nil
            return Found(header: header, type: type, stored: payload, plaintext: plaintext)
        }
    }

    private func openSegment(_ segments: [SegmentInfo], at position: Int) throws(WALError) {
        let segment = segments[position]
        // A segment whose successor starts at or below `from` holds nothing wanted: skip it unread.
        if position + 1 < segments.count, segments[position + 1].firstLSN <= from {
            index += 1
            return
        }
        if let due = expectedLSN, segment.firstLSN != due {
            if segment.firstLSN > due {
                throw WALError.lsnGap(segment: segment.name, expected: due, found: segment.firstLSN)
            }
            throw WALError.corruption(segment: segment.name, offset: 0, lsn: due,
                                      reason: "segment starts at LSN \(segment.firstLSN), inside the previous segment")
        }
        expectedLSN = segment.firstLSN
        isLastSegment = position == segments.count - 1
        let file: SegmentFile
        do {
            // A tailer opening the segment being written reads it as the writer writes it.
            let direct = liveEdge?.writerIsDirect == true && isLastSegment
            file = try SegmentFile.openForReading(path: segment.path, direct: direct)
        } catch where error.errno == ENOENT {
            // Listed when the cursor started, deleted since: truncation overtook this reader.
            throw WALError.truncatedWhileReading(segment: segment.name, lsn: segment.firstLSN)
        }
        let scanner = try SegmentScanner(file: file, readAhead: true,
                                         liveEdge: liveEdge.map { ($0, segment.firstLSN) })
        self.scanner = scanner
        recordEnd = scanner.offset
        setUpDecryption(for: scanner, segment: segment)
    }

    /// How the open segment's records decrypt, from its preamble (or the seed's epoch).
    private func setUpDecryption(for scanner: SegmentScanner, segment: SegmentInfo) {
        decryption = SegmentDecryption(keyRing: keyRing, requirePlaintext: requirePlaintext, preamble: scanner.preamble,
                                       segment: segment.name)
    }

    /// The LSN of the next record the cursor can return.
    var nextLSN: LSN { max(expectedLSN ?? from, from) }

    /// Follow mode: after ``next()`` returned nil at the live edge, looks again — re-lists the
    /// segments (a rollover makes the open segment sealed and adds the next; truncation may
    /// have deleted segments behind) and re-reads the open segment from its last record on.
    ///
    /// `activeSegment` is the writer's active segment's first LSN when known (in-process):
    /// while the open segment is still the active one, nothing new can have been listed, and
    /// the directory is not read again.
    func refresh(activeSegment: LSN? = nil) throws(WALError) {
        precondition(follow, "refresh() is for following cursors")
        guard !finished else { return }
        if let scanner, let current = segments?[index], isLastSegment, current.firstLSN == activeSegment {
            try rewind(scanner, segment: current)
            return
        }
        let listed = try SegmentDirectory.discover(directory)
        guard let scanner, let current = segments?[index] else {
            segments = listed
            index = expectedLSN.map { due in listed.firstIndex { $0.firstLSN >= due } ?? listed.count } ?? 0
            return
        }
        // The open segment stays first (its file stays readable even if truncation deleted its
        // name); the segments after it are the ones that follow it now.
        let later = listed.filter { $0.firstLSN > current.firstLSN }
        segments = [current] + later
        index = 0
        isLastSegment = later.isEmpty
        try rewind(scanner, segment: current)
    }

    /// Re-reads the open segment from its last record on.
    private func rewind(_ scanner: SegmentScanner, segment: SegmentInfo) throws(WALError) {
        let hadPreamble = scanner.preamble != nil
        try scanner.rewind(to: recordEnd)
        if !hadPreamble && scanner.preamble != nil {
            // The segment was opened before its first write; its preamble is there now.
            recordEnd = scanner.offset
            setUpDecryption(for: scanner, segment: segment)
        }
    }

    private func decrypt(_ stored: UnsafeRawBufferPointer, header: RecordHeader, segment: String) throws(WALError) -> [UInt8]? {
        guard let decryption else { preconditionFailure("a segment is open") }
        return try decryption.plaintext(of: stored, header: header, segment: segment)
    }

    private func closeSegment() {
        scanner?.close()
        scanner = nil
        index += 1
    }

    private func finish() -> Found? {
        if let scanner, let segment = segments?[index], isLastSegment {
            logEnd = SegmentTail(segment: segment, end: recordEnd, nextLSN: expectedLSN ?? segment.firstLSN,
                            fileSize: scanner.fileSize, preamble: scanner.preamble)
        }
        closeSegment()
        finished = true
        return nil
    }
}
