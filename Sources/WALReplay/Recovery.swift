import WALFormat
import WALIO
import WALEncryption
import WALSegments

/// Finds where the log really ends before a writer resumes it, and checks that the log it
/// resumes is one that replay can read back.
///
/// What opening for writing checks (``OpenVerification``):
/// - `.recent` (default): every segment's first record is the one its name says (one 4 KiB
///   read per segment: the name chain), and the last two segments are read in full with the
///   replay rules — the last segment against its predecessor, every CRC, LSN and required type
///   in both, and ``EndOfLog``'s rules for where the last one ends.
/// - `.full`: the whole log read with the replay rules (and authenticated, when a key ring is
///   configured) before the WAL opens.
///
/// Any problem found refuses the open with the error replay would throw; this check changes
/// nothing on disk (the open finishes an interrupted cut and migrates a legacy file before
/// it). With `.recent`, damage inside an older sealed segment (past its first record) and the
/// authentication of encrypted records are left to replay and `wal verify`; `.full` leaves
/// nothing.
package enum Recovery {
    /// Checks the log as `verification` says and returns where it ends; nil when there is no
    /// segment. Reads only: nothing is repaired here.
    package static func findTail(of segments: [SegmentInfo], directory: String, verification: OpenVerification,
                         recordTypes: Set<RecordType>, keyRing: KeyRing?) throws(WALError) -> SegmentTail? {
        guard let last = segments.last else { return nil }
        let from: LSN
        switch verification {
        case .recent:
            for segment in segments.dropLast(2) { try checkName(of: segment) }
            from = segments.count >= 2 ? segments[segments.count - 2].firstLSN : last.firstLSN
        case .full:
            from = 1
        }
        let cursor = ReplayCursor(directory: directory, from: from, recordTypes: recordTypes,
                                  keyRing: verification == .full ? keyRing : nil, segments: segments)
        while try cursor.nextView({ _ in () }) != nil {}
        guard let end = cursor.logEnd, end.segment.firstLSN == last.firstLSN else {
            preconditionFailure("a cursor that ended without error ends in the last segment")
        }
        return end
    }

    /// The name chain: the segment's first record must be the one its name says. One read of
    /// the first block; the record's checksum is checked when it is replayed.
    static func checkName(of segment: SegmentInfo) throws(WALError) {
        let file = try SegmentFile.openForReading(path: segment.path)
        defer { file.close() }
        let block = AlignedBuffer(capacity: AlignedBuffer.alignment)
        let count = try Syscall.preadFull(file.descriptor, block.slice(0..<block.capacity), offset: 0, path: segment.path)
        var bytes = UnsafeRawBufferPointer(block.slice(0..<count))
        var offset = 0
        if SegmentPreamble.starts(bytes), case .success(let preamble) = SegmentPreamble.decode(bytes) {
            offset = preamble.encodedSize
            bytes = UnsafeRawBufferPointer(rebasing: bytes[offset...])
        }
        guard let header = RecordHeader(decoding: bytes) else {
            throw WALError.corruption(segment: segment.name, offset: Int64(offset), lsn: segment.firstLSN,
                                      reason: "a sealed segment that does not start with a record")
        }
        guard header.lsn == segment.firstLSN else {
            throw WALError.corruption(segment: segment.name, offset: Int64(offset), lsn: segment.firstLSN,
                                      reason: "first record has LSN \(header.lsn), but the segment's name says \(segment.firstLSN)")
        }
    }

    /// Scans one segment for a summary (`wal segments`): its records up to the first thing
    /// that is not the record due, by ``EndOfLog``'s rules for its place. Never throws for
    /// damage (`verify` reports it); `place` only decides where the scan stops.
    static func scanTail(of file: SegmentFile, firstLSN: LSN, place: EndOfLog.Place) throws(WALError) -> (end: Int64, nextLSN: LSN, preamble: SegmentPreamble?) {
        let scanner = try SegmentScanner(file: file)
        var due = firstLSN
        var end = scanner.offset
        while true {
            guard try EndOfLog.next(from: scanner, due: due, segmentFirstLSN: firstLSN, place: place).decision == .record else { break }
            due += 1
            end = scanner.offset
        }
        return (end, due, scanner.preamble)
    }
}

/// How much of the log a writer checks when it opens (``WALConfiguration/openVerification``).
public enum OpenVerification: String, Sendable, CaseIterable {
    /// The name chain (each segment's first record against its name: one small read per
    /// segment), and the last two segments read in full with the replay rules. Catches a
    /// misnamed or stray last segment, a gap or overlap between the last two segments, and
    /// damage in either; damage deeper in a sealed segment is found by replay or `wal verify`.
    case recent
    /// The whole log read with the replay rules — every CRC, LSN, segment name and required
    /// record type, and every encrypted record authenticated when a key ring is configured —
    /// before the WAL opens. Costs a full read of the log (docs/PERFORMANCE.md).
    case full
}
