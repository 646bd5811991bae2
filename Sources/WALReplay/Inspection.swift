import WALFormat
import WALIO
import WALEncryption
import WALSegments

/// One segment as `wal segments` shows it: where its records start and end, without replaying
/// their payloads.
public struct SegmentSummary: Sendable, Equatable {
    /// Name, path, size and whether it is the active (last) segment.
    public var segment: SegmentInfo
    /// The LSN of its last valid record; nil when it holds none.
    public var lastLSN: LSN?
    /// Valid records, from its first LSN on.
    public var recordCount: Int
    /// Where its last valid record ends. Bytes after it are zeros (preallocated space), the
    /// seed's O_DIRECT padding of its last flush (up to the next 4 KiB boundary), or, in the
    /// active segment, a torn write that the next open cuts off.
    public var dataEnd: Int64
    /// The key id its preamble names, when the segment is encrypted.
    public var encryptionKeyID: UInt8?
}

/// One problem `verify` found: where, and the error replay would throw there.
public struct VerificationProblem: Sendable, Equatable, CustomStringConvertible {
    /// The segment's file name.
    public var segment: String?
    /// The byte offset in the segment, when the error names one.
    public var offset: Int64?
    /// The LSN concerned (the one due, or the record's).
    public var lsn: LSN?
    /// The error replay throws at this place.
    public var error: WALError

    /// Segment, offset and LSN (those known), then the error.
    public var description: String {
        var location: [String] = []
        if let segment { location.append(segment) }
        if let offset { location.append("offset \(offset)") }
        if let lsn { location.append("LSN \(lsn)") }
        return (location.isEmpty ? "" : location.joined(separator: ", ") + ": ") + error.description
    }
}

/// What `verify` found in a WAL directory.
public struct VerificationReport: Sendable {
    /// Every segment, oldest first.
    public var segments: [SegmentSummary]
    /// Records read and checked (CRC, LSN order, type; authenticated when a key ring was given).
    public var recordsChecked: Int
    /// Every problem found; empty when the log is clean.
    public var problems: [VerificationProblem]
    /// Non-zero bytes after the last record of the active segment: a torn final write, which is
    /// the log's legitimate end (the next open cuts it off), not a problem.
    public var tornTailBytes: Int64

    /// Whether no problem was found (a torn tail is not a problem).
    public var isClean: Bool { problems.isEmpty }
}

/// Read-only inspection of a WAL directory (for `wal segments` and `wal verify`).
package enum Inspection {
    package static func summarize(_ directory: String) throws(WALError) -> [SegmentSummary] {
        try SegmentDirectory.discover(directory).map { (info) throws(WALError) -> SegmentSummary in
            let file = try SegmentFile.openForReading(path: info.path)
            defer { file.close() }
            let tail = try Recovery.scanTail(of: file, firstLSN: info.firstLSN, place: info.isActive ? .last : .sealed)
            let count = Int(tail.nextLSN - info.firstLSN)
            return SegmentSummary(segment: info, lastLSN: count > 0 ? tail.nextLSN - 1 : nil, recordCount: count,
                                  dataEnd: tail.end, encryptionKeyID: tail.preamble?.keyID)
        }
    }

    /// Replays everything with the recovery rules; after a problem, goes on from the next
    /// segment, so that every damaged segment is reported, not only the first.
    package static func verify(_ directory: String, keyRing: KeyRing?, recordTypes: Set<RecordType>) -> VerificationReport {
        var report = VerificationReport(segments: [], recordsChecked: 0, problems: [], tornTailBytes: 0)
        do {
            report.segments = try summarize(directory)
        } catch {
            report.problems.append(problem(error))
            // A segment that cannot even be scanned is still replayed below, for its location.
        }
        let segments = (try? SegmentDirectory.discover(directory)) ?? []
        var from: LSN = 1
        while true {
            let cursor = ReplayCursor(directory: directory, from: from, recordTypes: recordTypes, keyRing: keyRing,
                                      requirePlaintext: keyRing != nil)
            do {
                while try cursor.next() != nil { report.recordsChecked += 1 }
                break
            } catch {
                report.problems.append(problem(error))
                // Resume at the segment after the damage; a gap at a segment's start resumes
                // at that segment itself (its records are still worth checking).
                guard let name = problem(error).segment,
                      let index = segments.firstIndex(where: { $0.name == name }) else { break }
                var resume = index + 1
                if case .lsnGap(_, _, let found) = error, found == segments[index].firstLSN { resume = index }
                guard resume < segments.count, segments[resume].firstLSN > from else { break }
                from = segments[resume].firstLSN
            }
        }
        if let last = report.segments.last, last.segment.size > last.dataEnd,
           let file = try? SegmentFile.openForReading(path: last.segment.path) {
            defer { file.close() }
            report.tornTailBytes = nonZeroBytes(in: file, from: last.dataEnd, to: last.segment.size)
        }
        return report
    }

    /// Bytes from the first non-zero byte at or after `start` to the last non-zero byte before `end`.
    private static func nonZeroBytes(in file: SegmentFile, from start: Int64, to end: Int64) -> Int64 {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var first: Int64?
        var last: Int64 = start
        var position = start
        while position < end {
            let count = (try? buffer.withUnsafeMutableBytes { (raw) throws(WALError) -> Int in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<Int(min(Int64(raw.count), end - position))]),
                              at: position)
            }) ?? 0
            if count == 0 { break }
            for index in 0..<count where buffer[index] != 0 {
                if first == nil { first = position + Int64(index) }
                last = position + Int64(index) + 1
            }
            position += Int64(count)
        }
        guard let first else { return 0 }
        return last - first
    }

    static func problem(_ error: WALError) -> VerificationProblem {
        switch error {
        case .corruption(let segment, let offset, let lsn, _):
            return VerificationProblem(segment: segment, offset: offset, lsn: lsn, error: error)
        case .lsnGap(let segment, let expected, _):
            return VerificationProblem(segment: segment, offset: nil, lsn: expected, error: error)
        case .unknownRequiredRecordType(_, let lsn, let segment),
             .authenticationFailed(let segment, let lsn),
             .encryptedRecordWithoutKey(let segment, let lsn),
             .truncatedWhileReading(let segment, let lsn):
            return VerificationProblem(segment: segment, offset: nil, lsn: lsn, error: error)
        case .unsupportedFormatVersion(_, let segment, let offset):
            return VerificationProblem(segment: segment, offset: offset, lsn: nil, error: error)
        case .unknownKey(_, let segment):
            return VerificationProblem(segment: segment, offset: nil, lsn: nil, error: error)
        case .io(_, _, let path), .notASegmentFile(let path, _):
            return VerificationProblem(segment: FilePaths.lastComponent(path), offset: nil, lsn: nil, error: error)
        default:
            return VerificationProblem(segment: nil, offset: nil, lsn: nil, error: error)
        }
    }
}
