import WALFormat
import WALSegments

/// The end-of-log rules: what a reader makes of what it finds where the next record is due.
///
/// Recovery (``Recovery``), replay and `verify` (``ReplayCursor``), `wal segments`
/// (``Inspection``) and live tailing (``ReplayCursor`` in follow mode) all decide here, so the
/// log ends in the same place for every one of them. docs/FORMAT.md ("Where a log ends") has
/// the same table for readers in other languages.
///
/// | found where LSN `due` is expected | sealed segment | last segment | last segment, following |
/// |---|---|---|---|
/// | valid record, LSN = `due` | record | record | record |
/// | end of data (end of file, or zeros from a 4 KiB boundary on) | end of segment ¹ | end of log | live edge |
/// | bytes that are not a valid record (torn, bad CRC, bad magic, zeros then non-zero bytes in a block) | corruption | end of log | live edge |
/// | valid record, LSN > `due`, right after the previous record | LSN gap | LSN gap | LSN gap |
/// | valid record, LSN > `due`, after zero padding | LSN gap | end of log ² | live edge |
/// | valid record, LSN < `due`, as the segment's first record | corruption (misnamed) | corruption (misnamed) | corruption (misnamed) |
/// | valid record, LSN < `due`, after a record | corruption (repeated LSN) | end of log ³ | live edge |
///
/// ¹ Then every byte after it must be zero; a non-zero byte there is corruption.
///
/// ² A write covers several blocks, and a device with a volatile cache may persist a later
/// block and lose an earlier one — typically the rewrite of the partial block that carried the
/// previous flush's last records. The records after the lost block were never durable (the one
/// due was not), so none of them can have been acknowledged: the log ends before them.
///
/// ³ Stale bytes of an older write; nothing after a record can be older than it otherwise.
///
/// A crash never damages a sealed segment: it was made durable (and cut to its last record)
/// before its successor was created. So everything that is an end in the last segment is an
/// error in a sealed one. A valid record whose LSN is above the one due *directly* after the
/// previous record cannot come from a crash (our writer packs records end to end and rewrites
/// blocks with their earlier bytes unchanged), so it stays an error even in the last segment.
enum EndOfLog {
    /// Where the segment being read stands in the log.
    enum Place {
        /// Not the last segment: complete and durable.
        case sealed
        /// The last segment, read to recover or replay the log.
        case last
        /// The last segment, read by a tailer while a writer may still be writing it.
        case liveEdge
    }

    /// What was found where the next record is due.
    enum Finding {
        /// A record with a valid header and checksum; `afterPadding` when zeros between the
        /// previous record (or the segment's start) and it were skipped as padding.
        case record(lsn: LSN, afterPadding: Bool)
        /// The end of the file, or zeros from a block boundary on.
        case endOfData
        /// Bytes that are not a valid record.
        case invalid(reason: String)
    }

    /// What the reader does.
    enum Decision: Equatable {
        /// Take the record: it is the one due.
        case record
        /// The segment's records end here (a sealed segment: check that only zeros follow).
        case endOfSegment
        /// The log ends here: nothing after this point was ever acknowledged.
        case endOfLog
        /// Follow mode: nothing more is there yet; look again later from the same place.
        case liveEdge
        /// ``WALError/lsnGap(segment:expected:found:)``.
        case gap(found: LSN)
        /// ``WALError/corruption(segment:offset:lsn:reason:)``.
        case corruption(reason: String)
    }

    /// Decides what `finding` means in a segment whose first LSN (by name) is `segmentFirstLSN`,
    /// where the record with LSN `due` is expected next.
    static func decide(_ finding: Finding, due: LSN, segmentFirstLSN: LSN, place: Place) -> Decision {
        /// The last segment ends here; a tailer waits here instead.
        let end: Decision = place == .liveEdge ? .liveEdge : .endOfLog
        switch finding {
        case .record(let lsn, _) where lsn == due:
            return .record
        case .endOfData:
            return place == .sealed ? .endOfSegment : end
        case .invalid(let reason):
            return place == .sealed ? .corruption(reason: reason) : end
        case .record(let lsn, let afterPadding) where lsn > due:
            return afterPadding && place != .sealed ? end : .gap(found: lsn)
        case .record(let lsn, _):
            if due == segmentFirstLSN {
                return .corruption(reason: "first record has LSN \(lsn), but the segment's name says \(segmentFirstLSN)")
            }
            return place == .sealed ? .corruption(reason: "record repeats LSN \(lsn)") : end
        }
    }
}

extension EndOfLog.Finding {
    /// What the scanner's step is, for the table.
    init(_ step: SegmentScanner.Step) {
        switch step {
        case .record(let header, _, let afterPadding): self = .record(lsn: header.lsn, afterPadding: afterPadding)
        case .end: self = .endOfData
        case .invalid(_, let reason): self = .invalid(reason: reason)
        }
    }
}

extension EndOfLog {
    /// Reads the next step of a segment and decides it by the table, with the seed's O_DIRECT
    /// padding rule — the one place it is applied, for replay, recovery, `verify`, tailing,
    /// point reads and the sparse index:
    ///
    /// The seed writes each O_DIRECT flush rounded up to the next 4096-byte boundary from a
    /// buffer it never clears, so the bytes from a flush's last record to that boundary may be
    /// anything an earlier flush left there (even whole CRC-valid copies of earlier records),
    /// and its next flush starts at the boundary. So when, after a record that ends inside a
    /// block, the bytes that follow are not the record due:
    ///
    /// | at the next block boundary | result |
    /// |---|---|
    /// | a complete record with a valid CRC and exactly the LSN due | the log continues there: the rest of the block was padding |
    /// | the end of data (end of file, or a zero header), in a sealed segment whose table result was corruption, when the next segment starts at exactly the LSN due | end of the segment (the padding of the seed's last flush); every byte after the boundary must still be zero |
    /// | anything else | the table's result for what followed the record |
    ///
    /// Only the rest of one block is ever padding: the seed pads less than a block, so a run
    /// of several padded blocks is not its layout and keeps the table's meaning. A stale record
    /// inside padding is never read as a record: only the boundary is looked at, and only the
    /// LSN due is accepted there. Our own writer packs records end to end and never pads, so
    /// for a log it wrote the continuation case can only arise if the record due starts
    /// exactly at a boundary — where it already was — never from a torn write (the record due
    /// would start before the boundary, inside the lost block).
    ///
    /// `nextSegmentFirstLSN` is the first LSN of the segment after this one (sealed segments):
    /// padding ends a sealed segment only where the next one takes over, so damage in a sealed
    /// segment's last block stays corruption, reported where it is.
    static func next(from scanner: SegmentScanner, due: LSN, segmentFirstLSN: LSN, place: Place,
                     nextSegmentFirstLSN: LSN? = nil) throws(WALError) -> (step: SegmentScanner.Step, decision: Decision) {
        let boundary = scanner.nextBlockBoundary
        let step = try scanner.next()
        let decision = decide(Finding(step), due: due, segmentFirstLSN: segmentFirstLSN, place: place)
        guard decision != .record, let boundary else { return (step, decision) }
        switch try scanner.probe(at: boundary) {
        case .record(let header) where header.lsn == due:
            scanner.skip(to: boundary)
            let padded = try scanner.next()
            guard case .record(let found, let payload, _) = padded, found.lsn == due else {
                preconditionFailure("a probed record reads back as probed")
            }
            return (.record(found, payload: payload, afterPadding: true), .record)
        case .endOfData where place == .sealed && nextSegmentFirstLSN == due:
            guard case .corruption = decision else { return (step, decision) }
            scanner.skip(to: boundary)
            return (.end, .endOfSegment)
        default:
            return (step, decision)
        }
    }
}
