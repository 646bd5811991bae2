/// Finds where the log really ends, so a reopened WAL resumes exactly after its last valid record.
enum Recovery {
    struct Tail {
        /// The end of the last valid record.
        var end: Int64
        /// The LSN the next record gets.
        var nextLSN: LSN
        /// The file's size before repair.
        var fileSize: Int64
        /// The segment's encryption preamble, if it has one.
        var preamble: SegmentPreamble?
        /// Whether the segment holds at least one record.
        var hasRecords: Bool { nextLSN > firstLSN }
        var firstLSN: LSN
    }

    /// Scans the last segment. A torn or invalid tail, and stale records after it, are
    /// where the log ends; a valid record with an LSN above the one due is a gap (an error).
    static func scanTail(of file: SegmentFile, firstLSN: LSN, engine: IOEngine) throws(WALError) -> Tail {
        let scanner = try SegmentScanner(file: file, engine: engine)
        var due = firstLSN
        var end = scanner.offset
        scan: while true {
            switch try scanner.next() {
            case .record(let header, _):
                if header.lsn > due {
                    throw WALError.lsnGap(segment: FilePaths.lastComponent(file.path), expected: due, found: header.lsn)
                }
                if header.lsn < due { break scan }
                due += 1
                end = scanner.offset
            case .end, .invalid:
                break scan
            }
        }
        return Tail(end: end, nextLSN: due, fileSize: scanner.fileSize, preamble: scanner.preamble, firstLSN: firstLSN)
    }

    /// Removes everything after `tail.end` and makes the cut durable before anything new is
    /// written, so that bytes of a torn write or of an older log can never be replayed later.
    static func repair(_ file: SegmentFile, tail: Tail) throws(WALError) {
        if tail.fileSize != tail.end {
            try Syscall.ftruncate(file.descriptor, length: tail.end, path: file.path)
        }
        // Always: records that reached the page cache before a crash may not be on disk yet.
        try Syscall.fsync(file.descriptor, path: file.path)
    }
}
