import WALFormat

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
