import ArgumentParser
import Foundation
import RaftLogStorage
import WAL

/// The Raft crash campaign: a child runs random Raft operations on a ``RaftLogStorage``
/// (``RaftOpGenerator``) and reports each one before it starts (`begin OP`) and when it has
/// returned (`done`); the parent SIGKILLs it at a random moment, reopens the storage and
/// requires the model after every reported `done` — plus, for an operation that had begun,
/// one of the states a crash during it may leave (``RaftLogState/crashStates(during:)``).
struct RaftCampaign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft", abstract: "Run crash cycles of Raft log storage: random operations, SIGKILL, reopen, compare.")

    @Option(help: "Crash cycles to run.") var cycles: Int = 50
    @Option(help: "Seed for operations and kill times (default: random).") var seed: UInt64?
    @Option(name: .customLong("max-delay-ms"), help: "Longest time a child runs before the kill.") var maxDelayMilliseconds: Int = 300
    @Option(help: "Engines to alternate between (io_uring, posix).") var engines: [String] = ["io_uring", "posix"]

    func run() throws {
        let seed = self.seed ?? UInt64.random(in: 1...UInt64.max)
        var rng = SplitMix64(seed: seed)
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let root = base + "/wal-crash-raft-\(getpid())-\(seed)"
        let directory = root + "/wal"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        print("wal-crash raft: \(cycles) cycles in \(directory), seed \(seed)")
        var model = RaftLogState()
        var totals = (operations: 0, midOperation: 0, mismatches: 0, entries: 0)
        let start = Date()
        for cycle in 0..<cycles {
            let engine = engines[cycle % engines.count]
            let delay = Int(rng.next() % UInt64(maxDelayMilliseconds + 1))
            let outcome = try ChildRun.start(arguments: [
                "raft-child", "--directory", directory, "--seed", String(seed ^ UInt64(cycle) &* 0x2545_F491_4F6C_DD1D),
                "--engine", engine,
            ], killAfterMilliseconds: delay)
            guard outcome.killed else {
                throw CrashFailure("cycle \(cycle): the child exited by itself (\(outcome.status)): \(outcome.errorOutput)")
            }
            var pending: RaftOp?
            for line in outcome.lines where line != "ready" {
                if line == "done", let op = pending {
                    model = model.applying(op)
                    pending = nil
                    totals.operations += 1
                } else if line.hasPrefix("begin "), pending == nil, let op = RaftOp(String(line.dropFirst(6))) {
                    pending = op
                } else {
                    throw CrashFailure("cycle \(cycle): unexpected report line \(line)")
                }
            }
            let allowed = pending.map { model.crashStates(during: $0) } ?? [model]
            if pending != nil { totals.midOperation += 1 }
            let configuration = try RaftSetup.configuration(directory: directory, engine: engine)
            let storage = try RaftLogStorage(configuration: configuration)
            let found = try RaftLogState.read(storage)
            try storage.close()
            guard let match = allowed.first(where: { $0 == found }) else {
                totals.mismatches += 1
                throw CrashFailure("cycle \(cycle) (seed \(seed), \(engine), killed after \(delay) ms during \(pending?.description ?? "no operation")):\n"
                                   + "  reopened: \(found)\n  allowed:\n" + allowed.map { "    \($0)" }.joined(separator: "\n"))
            }
            model = match
            totals.entries = model.entries.count
            if (cycle + 1) % 10 == 0 || cycle + 1 == cycles {
                print("  \(cycle + 1) cycles, \(totals.operations) operations acknowledged, \(totals.midOperation) kills during an operation, "
                      + "mismatches \(totals.mismatches), \(model.entries.count) entries above snapshot \(model.snapshot.index)")
            }
        }
        print("raft cycles \(cycles), operations acknowledged \(totals.operations), kills during an operation \(totals.midOperation), "
              + "mismatches = \(totals.mismatches); \(Int(Date().timeIntervalSince(start))) s")
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// The process the Raft campaign kills: opens the storage, generates operations from what it
/// finds, and reports each on standard output (one write per line).
struct RaftChild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft-child", abstract: "Run Raft storage operations until killed (run by `wal-crash raft`).", shouldDisplay: false)

    @Option var directory: String
    @Option var seed: UInt64
    @Option var engine: String

    func run() throws {
        let configuration = try RaftSetup.configuration(directory: directory, engine: engine)
        var storage = try RaftLogStorage(configuration: configuration)
        var state = try RaftLogState.read(storage)
        reportLine("ready")
        var generator = RaftOpGenerator(seed: seed)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let op = generator.next(state)
            reportLine("begin \(op)")
            storage = try op.perform(on: storage, configuration: configuration)
            state = state.applying(op)
            reportLine("done")
        }
        FileHandle.standardError.write(Data("wal-crash raft-child: not killed within 60 s\n".utf8))
        Foundation.exit(3)
    }
}

/// Writes one line with a single write(2) (atomic on a pipe below PIPE_BUF).
private func reportLine(_ line: String) {
    let bytes = Array(line.utf8) + [UInt8(ascii: "\n")]
    if bytes.withUnsafeBytes({ write(1, $0.baseAddress, $0.count) }) != bytes.count { Foundation.exit(4) }
}

/// Small segments, so compaction deletes segments and overwrites cross segment boundaries.
enum RaftSetup {
    static func configuration(directory: String, engine: String) throws -> WALConfiguration {
        var configuration = WALConfiguration(directory: directory)
        configuration.segmentTargetSize = 32 * 1024
        configuration.bufferSize = 16 * 1024
        guard let choice = IOEngineChoice(rawValue: engine) else { throw ValidationError("unknown engine \(engine)") }
        configuration.engine = choice
        return configuration
    }
}
