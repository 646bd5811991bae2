import ArgumentParser
import WAL

/// `wal truncate DIR --before LSN` (front) or `--after LSN` (suffix).
struct TruncateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "truncate",
        abstract: "Delete records from the front (--before: whole sealed segments) or the end (--after: every record above an LSN).",
        discussion: "Opens the WAL for writing, so it fails while another process has it open. --after is crash-atomic: interrupted, the next open finishes it.")

    @Argument(help: "The WAL directory.") var directory: String
    @Option(help: "The checkpoint: segments whose records are all below it are deleted.") var before: UInt64?
    @Option(help: "The last LSN kept: every record above it is removed, and the next record gets LSN + 1.") var after: UInt64?
    @OptionGroup var keys: KeyOptions
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        var segmentsDeleted: Int?
        var bytesReclaimed: Int64?
        var firstRetainedLSN: UInt64
        var nextLSN: UInt64
    }

    func validate() throws {
        guard (before == nil) != (after == nil) else {
            throw ValidationError("give exactly one of --before and --after")
        }
    }

    func run() throws {
        let wal = try openForMaintenance(directory, keys: keys)
        var output = Output(firstRetainedLSN: 0, nextLSN: 0)
        if let before {
            let result = try wal.truncate(before: before)
            output.segmentsDeleted = result.segmentsDeleted
            output.bytesReclaimed = result.bytesReclaimed
        } else if let after {
            try wal.truncate(after: after)
        }
        output.firstRetainedLSN = try wal.firstLSN
        output.nextLSN = wal.nextLSN
        try wal.close()
        if json { return try printJSON(output) }
        if let deleted = output.segmentsDeleted {
            print("deleted \(deleted) segment(s), \(output.bytesReclaimed ?? 0) bytes; the log now starts at LSN \(output.firstRetainedLSN)")
        } else {
            print("the log now ends at LSN \(output.nextLSN - 1); the next record gets LSN \(output.nextLSN)")
        }
    }
}

/// `wal reset DIR --to LSN`.
struct ResetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Empty the log so that the next record gets LSN + 1 (installing a snapshot that covers everything up to LSN).",
        discussion: """
            Opens the WAL for writing, so it fails while another process has it open. Crash-atomic: interrupted, the next open finishes it.

            The log left behind (one empty segment named LSN + 1) cannot be handed back to the nodedb-wal crate: it takes its next LSN from the last record, so it would start again at LSN 1. swift-wal continues it correctly.
            """)

    @Argument(help: "The WAL directory.") var directory: String
    @Option(help: "The LSN the snapshot covers: the next record gets LSN + 1.") var to: UInt64
    @OptionGroup var keys: KeyOptions
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        var nextLSN: UInt64
    }

    func run() throws {
        let wal = try openForMaintenance(directory, keys: keys)
        try wal.reset(to: to)
        let output = Output(nextLSN: wal.nextLSN)
        try wal.close()
        if json { return try printJSON(output) }
        print("the log is empty; the next record gets LSN \(output.nextLSN)")
    }
}

/// Opens an existing WAL directory for a maintenance command (no preallocated spare).
func openForMaintenance(_ directory: String, keys: KeyOptions) throws -> SegmentedWAL {
    var configuration = WALConfiguration(directory: directory)
    configuration.encryption = try keys.keyRing()
    configuration.preallocation = .none
    configuration.logger = cliLogger()
    guard try SegmentedWAL.inspectSegments(in: directory).isEmpty == false else {
        throw CLIError("\(directory) holds no WAL segments")
    }
    return try SegmentedWAL(configuration: configuration)
}

/// `wal migrate LEGACY_FILE DIR`.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a single-file WAL of the seed's legacy layout into a segmented directory.")

    @Argument(help: "The legacy WAL file.") var legacyFile: String
    @Argument(help: "The WAL directory (created if missing).") var directory: String
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        var segment: String?
    }

    func run() throws {
        let migrated = try SegmentedWAL.migrateLegacy(file: legacyFile, into: directory)
        if json { return try printJSON(Output(segment: migrated)) }
        print(migrated.map { "migrated into \($0)" } ?? "\(legacyFile) held no records: removed, nothing migrated")
    }
}
