import ArgumentParser
import WAL

/// `wal verify DIR`: exit 0 when clean, 1 with every problem otherwise.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Read the whole log, checking CRCs, LSN continuity, segment names and record types.",
        discussion: "Exits 0 when the log is clean and 1 otherwise, naming the segment, offset and LSN of each problem. A torn write at the end of the active segment is the log's legitimate end (the next open cuts it off) and is reported as a note. With --key-file, encrypted records are authenticated too.")

    @Argument(help: "The WAL directory.") var directory: String
    @OptionGroup var keys: KeyOptions
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        struct Problem: Encodable {
            var segment: String?
            var offset: Int64?
            var lsn: UInt64?
            var message: String
            /// What to do about it, when there is something to do.
            var hint: String?
        }
        var clean: Bool
        var segments: Int
        var recordsChecked: Int
        var tornTailBytes: Int64
        var problems: [Problem]
        var pendingCut: SegmentsCommand.Cut?
        var metadata: Bool
    }

    func run() throws {
        let report = SegmentedWAL.verify(directory: directory, keyRing: try keys.keyRing())
        // A damaged intent is reported by verify itself (replay refuses it).
        let cut = (try? SegmentedWAL.pendingCut(in: directory))?.map { SegmentsCommand.Cut(kind: $0.kind.rawValue, lsn: $0.lsn) }
        let metadata = try SegmentedWAL.hasMetadata(in: directory)
        let output = Output(clean: report.isClean, segments: report.segments.count, recordsChecked: report.recordsChecked,
                            tornTailBytes: report.tornTailBytes,
                            problems: report.problems.map { .init(segment: $0.segment, offset: $0.offset, lsn: $0.lsn, message: $0.error.description,
                                                                  hint: hint(for: $0.error)) },
                            pendingCut: cut, metadata: metadata)
        if json {
            try printJSON(output)
        } else {
            for problem in report.problems {
                print("PROBLEM \(problem)")
                if let hint = hint(for: problem.error) { print("  hint: \(hint)") }
            }
            if let cut {
                print("note: a cut (\(cut.kind) \(cut.lsn)) was interrupted; the log was checked as cut, and the next open finishes it")
            }
            if metadata { print("metadata: present") }
            if report.tornTailBytes > 0 {
                print("note: \(report.tornTailBytes) bytes of a torn write after the last record of the active segment (cut off on the next open)")
            }
            print("\(report.isClean ? "clean" : "\(report.problems.count) problem(s)"): \(report.segments.count) segment(s), \(report.recordsChecked) record(s) checked")
        }
        if !report.isClean { throw ExitCode(1) }
    }

    private func hint(for error: WALError) -> String? {
        ErrorHints.hint(for: error, directory: directory, verifying: true)
    }
}
