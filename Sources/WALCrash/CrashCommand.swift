import ArgumentParser

/// `wal-crash`: the crash campaign of docs/RELIABILITY.md. `run` is the parent; `child` is the
/// process it starts and kills.
@main
struct CrashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-crash",
        abstract: "Kill a committing process at random moments and prove no acknowledged record is lost.",
        subcommands: [CrashCampaign.self, CrashChild.self, RaftCampaign.self, RaftChild.self],
        defaultSubcommand: CrashCampaign.self)
}
