import WAL

/// Checks a reopened WAL against what was acknowledged before the crash:
/// - every acknowledged LSN (at or above the first retained one) is replayed with exactly the
///   payload, type and routing that was committed under it (else it is *lost*);
/// - LSNs are contiguous from the first retained segment's first LSN;
/// - every record replayed is one the workload appended (a torn or stale record passed off as
///   valid would fail its self-check), no record appears twice, and each writer's records
///   appear in the order it appended them.
struct LogVerifier {
    let workload: Workload

    struct Report {
        var recordsReplayed = 0
        var acknowledgedChecked = 0
        var lost = 0
        var problems: [String] = []
        var firstLSN: LSN = 0
        var nextLSN: LSN = 0
    }

    func verify(_ wal: SegmentedWAL, acknowledged: [LSN: RecordID]) -> Report {
        var report = Report()
        var replayed: [LSN: RecordID] = [:]
        var lastSeq: [UInt64: UInt64] = [:]  // (cycle << 32 | writer) -> last seq
        var seen = Set<RecordID>()
        do {
            let segments = try wal.segments()
            report.firstLSN = segments.first?.firstLSN ?? 1
            var expected = report.firstLSN
            var stream = wal.records(from: 1)
            while let record = try stream.next() {
                report.recordsReplayed += 1
                if record.lsn != expected {
                    report.problems.append("LSN \(record.lsn) follows \(expected - 1): the log is not contiguous")
                }
                expected = record.lsn + 1
                guard let id = workload.isGenuine(record) else {
                    report.problems.append("LSN \(record.lsn) holds a record that was never appended (\(record.payload.count) bytes)")
                    continue
                }
                if !seen.insert(id).inserted { report.problems.append("\(id) appears twice (again at LSN \(record.lsn))") }
                let key = UInt64(id.cycle) << 32 | UInt64(id.writer)
                if let previous = lastSeq[key], previous >= id.seq {
                    report.problems.append("\(id) at LSN \(record.lsn) comes after seq \(previous) of the same writer")
                }
                lastSeq[key] = id.seq
                replayed[record.lsn] = id
            }
            report.nextLSN = expected
        } catch {
            report.problems.append("replay failed: \(error)")
        }
        for (lsn, id) in acknowledged where lsn >= report.firstLSN {
            report.acknowledgedChecked += 1
            if replayed[lsn] != id {
                report.lost += 1
                if report.lost <= 10 {
                    report.problems.append("acknowledged LSN \(lsn) (\(id)) is \(replayed[lsn].map { "replaced by \($0)" } ?? "missing")")
                }
            }
        }
        return report
    }
}
