import ArgumentParser
import WAL

/// `wal segments DIR`: one line per segment.
struct SegmentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segments",
        abstract: "List a WAL directory's segments: first/last LSN, records, size, sealed or active, encryption.")

    @Argument(help: "The WAL directory.") var directory: String
    @Flag(help: "Print JSON.") var json = false

    struct Row: Encodable {
        var name: String
        var firstLSN: UInt64
        var lastLSN: UInt64?
        var records: Int
        var size: Int64
        var dataEnd: Int64
        var state: String
        var encryptionKeyID: UInt8?
    }

    struct Output: Encodable {
        var segments: [Row]
        /// A cut of the log's end recorded and not finished (the next open finishes it).
        var pendingCut: Cut?
        /// Whether the directory holds durable metadata (`setMetadata`).
        var metadata: Bool
    }

    struct Cut: Encodable {
        var kind: String
        var lsn: UInt64
    }

    func run() throws {
        let cut = try SegmentedWAL.pendingCut(in: directory).map { Cut(kind: $0.kind.rawValue, lsn: $0.lsn) }
        let metadata = try SegmentedWAL.hasMetadata(in: directory)
        let rows = try SegmentedWAL.inspectSegments(in: directory).map { summary in
            Row(name: summary.segment.name, firstLSN: summary.segment.firstLSN, lastLSN: summary.lastLSN,
                records: summary.recordCount, size: summary.segment.size, dataEnd: summary.dataEnd,
                state: summary.segment.isActive ? "active" : "sealed", encryptionKeyID: summary.encryptionKeyID)
        }
        if json { return try printJSON(Output(segments: rows, pendingCut: cut, metadata: metadata)) }
        printTable([["segment", "first LSN", "last LSN", "records", "size", "data", "state", "encrypted"]] + rows.map { row in
            [row.name, String(row.firstLSN), row.lastLSN.map(String.init) ?? "-", String(row.records), String(row.size),
             String(row.dataEnd), row.state, row.encryptionKeyID.map { "key \($0)" } ?? "no"]
        })
        if let cut { print("pending cut: \(cut.kind) \(cut.lsn) (readers see the log as cut; the next open finishes it)") }
        if metadata { print("metadata: present") }
    }
}
