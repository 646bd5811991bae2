import ArgumentParser

/// The `wal` command-line tool.
@main
struct WALCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Inspect, verify and benchmark swift-wal write-ahead logs.",
        subcommands: [BenchCommand.self, SegmentsCommand.self, VerifyCommand.self, DumpCommand.self,
                      TruncateCommand.self, MigrateCommand.self]
    )
}
