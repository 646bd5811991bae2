import ArgumentParser
import WAL

/// `wal truncate DIR --before LSN`.
struct TruncateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "truncate",
        abstract: "Delete the sealed segments whose records all lie below an LSN (the active segment is kept).",
        discussion: "Opens the WAL for writing, so it fails while another process has it open.")

    @Argument(help: "The WAL directory.") var directory: String
    @Option(help: "The checkpoint: segments whose records are all below it are deleted.") var before: UInt64
    @OptionGroup var keys: KeyOptions
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        var segmentsDeleted: Int
        var bytesReclaimed: Int64
        var firstRetainedLSN: UInt64
    }

    func run() throws {
        var configuration = WALConfiguration(directory: directory)
        configuration.encryption = try keys.keyRing()
        configuration.preallocation = .none
        configuration.logger = cliLogger()
        guard try SegmentedWAL.inspectSegments(in: directory).isEmpty == false else {
            throw CLIError("\(directory) holds no WAL segments")
        }
        let wal = try SegmentedWAL(configuration: configuration)
        let result = try wal.truncate(before: before)
        let output = Output(segmentsDeleted: result.segmentsDeleted, bytesReclaimed: result.bytesReclaimed,
                            firstRetainedLSN: try wal.segments().first?.firstLSN ?? wal.nextLSN)
        try wal.close()
        if json { return try printJSON(output) }
        print("deleted \(output.segmentsDeleted) segment(s), \(output.bytesReclaimed) bytes; the log now starts at LSN \(output.firstRetainedLSN)")
    }
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
