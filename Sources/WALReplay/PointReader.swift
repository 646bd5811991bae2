import Glibc
import Synchronization
import WALFormat
import WALIO
import WALEncryption
import WALSegments

/// Reads records by LSN without scanning a segment from its start: ``SegmentedWAL/record(at:)``
/// and ``SegmentedWAL/records(from:through:)``.
///
/// Each segment gets a sparse in-memory index — the offset of the first record at or after
/// every ``stride`` bytes, with its LSN — built by one sequential scan the first time a read
/// lands in the segment, and, for the segment still being written, extended from where it
/// stopped when a read asks for a record beyond it (the writer's hot path is untouched). A
/// read then opens the segment, reads from the nearest entry at or below the LSN — one 64 KiB
/// read, a second when the record runs past it — and checks each record it passes (CRC,
/// LSN continuity, type, authentication) as replay does.
///
/// The caller reads only LSNs that are durable (every record up to them is on disk); the
/// index is dropped when the log's end is cut — and one a read built while a cut ran is never
/// stored — and a segment that truncation deleted is forgotten on the next read.
package final class PointReader: Sendable {
    /// Bytes of segment between index entries: a read covers at most this much plus its record.
    static let stride: Int64 = 64 * 1024

    private let directory: String
    private let recordTypes: Set<RecordType>
    private let keyRing: KeyRing?
    private let requirePlaintext: Bool
    private let state = Mutex(State())

    private struct State {
        /// The segments as last listed.
        var segments: [SegmentInfo] = []
        /// Index per segment, by first LSN.
        var indexes: [LSN: SegmentIndex] = [:]
        /// The cut generation the index was built under (see ``LogWriter/cutGeneration``).
        var generation: UInt64 = 0
    }

    /// One segment's sparse index.
    struct SegmentIndex: Sendable {
        var preamble: SegmentPreamble?
        /// (LSN, offset) of records, ascending, at least ``stride`` bytes apart.
        var entries: [(lsn: LSN, offset: Int64)] = []
        /// The first LSN not indexed yet, and where its record starts.
        var nextLSN: LSN
        var end: Int64
        /// The scan reached the end of the segment's records.
        var complete = false
    }

    package init(directory: String, recordTypes: Set<RecordType>, keyRing: KeyRing?, requirePlaintext: Bool) {
        self.directory = directory
        self.recordTypes = recordTypes
        self.keyRing = keyRing
        self.requirePlaintext = requirePlaintext
    }

    /// The records with LSN in `lo...hi`, every one of which must be durable; records below the
    /// first retained one are skipped. `generation` is the writer's cut generation when the
    /// read began: a change drops every index, and what a read began under an older generation
    /// built (from bytes a cut may have changed meanwhile) is never kept. Odd (a cut under way):
    /// nothing is kept either. The caller checks the generation again after the read and
    /// reads again when it changed (``SegmentedWAL/records(from:through:)``).
    package func records(from lo: LSN, through hi: LSN, generation: UInt64) throws(WALError) -> [WALRecord] {
        var result: [WALRecord] = []
        var lsn = lo
        var relisted = false
        while lsn <= hi {
            do throws(WALError) {
                switch try locate(lsn, generation: generation) {
                case .below(let first):
                    lsn = first  // truncated away below the first retained record
                    continue
                case .found(let segment, let entry, let following):
                    let next = try read(segment, from: entry, following: following, wanted: lsn...hi, into: &result)
                    if next > lsn {
                        lsn = next
                        relisted = false
                        continue
                    }
                case .none:
                    break
                }
            } catch {
                // A segment of the cached listing was deleted by truncation since: list again once.
                guard case .truncatedWhileReading = error, !relisted else { throw error }
            }
            // Nothing at `lsn` in the segments as listed: list once more (a rollover since).
            guard !relisted else { break }
            relisted = true
            state.withLock { $0.segments = [] }
        }
        return result
    }

    private enum Location {
        /// The segment holding the LSN, an index entry at or below it, and the next segment's
        /// first LSN (nil for the last segment).
        case found(SegmentInfo, (lsn: LSN, offset: Int64), following: LSN?)
        /// The LSN lies below the first retained record, which is this one.
        case below(LSN)
        /// No segment is listed.
        case none
    }

    /// The segment holding `lsn` and an index entry at or below it, indexing the segment first
    /// when needed.
    private func locate(_ lsn: LSN, generation: UInt64) throws(WALError) -> Location {
        var segments = state.withLock { state -> [SegmentInfo] in
            if state.generation != generation {
                state = State()
                state.generation = generation
            }
            return generation % 2 == 0 ? state.segments : []
        }
        if segments.isEmpty {
            segments = try SegmentDirectory.discover(directory)
            let listed = segments
            state.withLock { state in
                // Built under another generation (a cut since this read began): not kept.
                guard state.generation == generation else { return }
                state.segments = listed
                let kept = Set(listed.map(\.firstLSN))
                state.indexes = state.indexes.filter { kept.contains($0.key) }
            }
        }
        guard let position = segments.lastIndex(where: { $0.firstLSN <= lsn }) else {
            return segments.first.map { .below($0.firstLSN) } ?? .none
        }
        let segment = segments[position]
        let following = position + 1 < segments.count ? segments[position + 1].firstLSN : nil
        var index = state.withLock { $0.indexes[segment.firstLSN] }
        if index == nil || (!index!.complete && index!.nextLSN <= lsn) {
            let built = try extend(index, of: segment, following: following, through: lsn)
            index = built
            state.withLock { state in
                if state.generation == generation { state.indexes[segment.firstLSN] = built }
            }
        }
        guard let index else { return .none }
        let entries = index.entries
        // The last entry at or below `lsn` (binary search).
        var low = 0, high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].lsn <= lsn { low = middle + 1 } else { high = middle }
        }
        let entry = low > 0 ? entries[low - 1] : (lsn: segment.firstLSN, offset: Int64(index.preamble?.encodedSize ?? 0))
        return .found(segment, entry, following: following)
    }

    /// Scans `segment` from where `index` stopped (its start when nil) to the end of its
    /// records, or past `lsn`, adding an entry every ``stride`` bytes.
    private func extend(_ index: SegmentIndex?, of segment: SegmentInfo, following: LSN?,
                        through lsn: LSN) throws(WALError) -> SegmentIndex {
        let file = try open(segment)
        defer { file.close() }
        let scanner = try SegmentScanner(file: file, readAhead: index == nil)
        var index = index ?? SegmentIndex(preamble: scanner.preamble, nextLSN: segment.firstLSN, end: scanner.offset)
        if index.end != scanner.offset { try scanner.rewind(to: index.end) }
        // Index a little beyond the asked LSN, never the whole live segment per read.
        let stopAfter = min(lsn, LSNDomain.last - 4096) + 4096
        while index.nextLSN <= stopAfter {
            let (step, decision) = try EndOfLog.next(from: scanner, due: index.nextLSN, segmentFirstLSN: segment.firstLSN,
                                                     place: segment.isActive ? .last : .sealed, nextSegmentFirstLSN: following)
            guard decision == .record, case .record(let header, let payload, _) = step else {
                if case .gap(let found) = decision {
                    throw WALError.lsnGap(segment: segment.name, expected: index.nextLSN, found: found)
                }
                // The end of the segment's records (or of the log, in the active segment).
                index.complete = !segment.isActive
                break
            }
            let start = scanner.offset - Int64(RecordHeader.size + payload.count)
            if index.entries.last.map({ start - $0.offset >= Self.stride }) ?? true {
                index.entries.append((header.lsn, start))
            }
            index.nextLSN = header.lsn + 1
            index.end = scanner.offset
        }
        return index
    }

    /// Reads the records of `segment` from `start` on, appending those in `wanted` to `result`;
    /// returns the LSN after the last record read.
    private func read(_ segment: SegmentInfo, from start: (lsn: LSN, offset: Int64), following: LSN?, wanted: ClosedRange<LSN>,
                      into result: inout [WALRecord]) throws(WALError) -> LSN {
        let preamble = state.withLock { $0.indexes[segment.firstLSN]?.preamble }
        let file = try open(segment)
        defer { file.close() }
        let scanner = try SegmentScanner(file: file, at: start.offset, preamble: preamble)
        let decryption = SegmentDecryption(keyRing: keyRing, requirePlaintext: requirePlaintext, preamble: preamble,
                                           segment: segment.name)
        var due = start.lsn
        while due <= wanted.upperBound {
            // Only durable records are read: every one due is there, in this segment or the next.
            let (step, decision) = try EndOfLog.next(from: scanner, due: due, segmentFirstLSN: segment.firstLSN, place: .sealed,
                                                     nextSegmentFirstLSN: following)
            let header: RecordHeader, payload: UnsafeRawBufferPointer
            switch (decision, step) {
            case (.record, .record(let found, let bytes, _)):
                header = found
                payload = bytes
            case (.endOfSegment, _), (.endOfLog, _), (.liveEdge, _):
                return due  // the segment's records end here; the log goes on in the next one
            case (.gap(let found), _):
                throw WALError.lsnGap(segment: segment.name, expected: due, found: found)
            case (.corruption(let reason), .invalid(let offset, _)):
                throw WALError.corruption(segment: segment.name, offset: offset, lsn: due, reason: reason)
            case (.corruption(let reason), .record(let found, _, _)):
                throw WALError.corruption(segment: segment.name, offset: scanner.offset - Int64(found.recordLength), lsn: due,
                                          reason: reason)
            case (.corruption(let reason), .end):
                throw WALError.corruption(segment: segment.name, offset: scanner.offset, lsn: due, reason: reason)
            case (.record, _):
                preconditionFailure("the table decides .record only for a record")
            }
            due += 1
            guard header.lsn >= wanted.lowerBound else { continue }
            let type = RecordType(rawValue: header.storedType)
            if !recordTypes.contains(type) && type.isRequired {
                throw WALError.unknownRequiredRecordType(type: type.rawValue, lsn: header.lsn, segment: segment.name)
            }
            let encrypted = RecordType.isEncrypted(storedValue: header.storedType)
            let plaintext = encrypted ? try decryption.plaintext(of: payload, header: header, segment: segment.name) : nil
            result.append(WALRecord(lsn: header.lsn, type: type, tenant: header.tenant, vshard: header.vshard,
                                    payload: plaintext ?? Array(payload), isEncrypted: encrypted))
        }
        return due
    }

    private func open(_ segment: SegmentInfo) throws(WALError) -> SegmentFile {
        do {
            return try SegmentFile.openForReading(path: segment.path)
        } catch where error.errno == ENOENT {
            state.withLock { $0.segments = [] }  // list again next time
            throw WALError.truncatedWhileReading(segment: segment.name, lsn: segment.firstLSN)
        }
    }
}
