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

    func run() throws {
        let rows = try SegmentedWAL.inspectSegments(in: directory).map { summary in
            Row(name: summary.segment.name, firstLSN: summary.segment.firstLSN, lastLSN: summary.lastLSN,
                records: summary.recordCount, size: summary.segment.size, dataEnd: summary.dataEnd,
                state: summary.segment.isActive ? "active" : "sealed", encryptionKeyID: summary.encryptionKeyID)
        }
        if json { return try printJSON(rows) }
        printTable([["segment", "first LSN", "last LSN", "records", "size", "data", "state", "encrypted"]] + rows.map { row in
            [row.name, String(row.firstLSN), row.lastLSN.map(String.init) ?? "-", String(row.records), String(row.size),
             String(row.dataEnd), row.state, row.encryptionKeyID.map { "key \($0)" } ?? "no"]
        })
    }
}
