import ArgumentParser
import WAL

/// The `wal` command-line tool.
@main
struct WALCommand: AsyncParsableCommand {
    /// The swift-wal version this tool belongs to (`wal --version`); raise it with each release.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Inspect, verify and benchmark swift-wal write-ahead logs.",
        discussion: "Shell completions: `wal --generate-completion-script bash|zsh|fish` prints a script to install (see the README).",
        version: version,
        subcommands: [BenchCommand.self, SegmentsCommand.self, VerifyCommand.self, DumpCommand.self,
                      TruncateCommand.self, ResetCommand.self, MigrateCommand.self, LogOpsBenchCommand.self]
    )

    /// ArgumentParser's own `main`, except that a ``WALError`` is printed with a hint of what to
    /// do next (``ErrorHints``), still as one line on stderr with exit code 1.
    static func main() async {
        var directory: String?
        do {
            var command = try parseAsRoot()
            directory = Self.directory(of: command)
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as WALError {
            exit(withError: CLIError(ErrorHints.message(for: error, directory: directory)))
        } catch {
            exit(withError: error)
        }
    }

    /// The WAL directory a subcommand works on, which error hints can name and look into.
    private static func directory(of command: any ParsableCommand) -> String? {
        switch command {
        case let command as SegmentsCommand: command.directory
        case let command as VerifyCommand: command.directory
        case let command as DumpCommand: command.directory
        case let command as TruncateCommand: command.directory
        case let command as MigrateCommand: command.directory
        default: nil
        }
    }
}
