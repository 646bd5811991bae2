import ArgumentParser
import Foundation
import WAL

/// The crash campaign: start a child that commits, SIGKILL it at a random moment, reopen the
/// WAL and check that nothing acknowledged was lost (see ``LogVerifier``); repeat.
///
/// Cycles alternate the engine (io_uring, POSIX) and, in pairs, encryption (off, on), so the
/// log holds plain and encrypted segments written by both engines. The same directory is used
/// throughout; when it passes 16 MiB it is truncated behind a checkpoint, as a database would.
struct CrashCampaign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run crash cycles: commit, SIGKILL, reopen, verify.")

    @Option(help: "Crash cycles to run.") var cycles: Int = 50
    @Option(help: "WAL directory (default: a new one under $TMPDIR, removed on success).") var directory: String?
    @Option(help: "Seed for kill times, configurations and payloads (default: random).") var seed: UInt64?
    @Option(name: .customLong("max-delay-ms"), help: "Longest time a child runs before the kill.") var maxDelayMilliseconds: Int = 400
    @Option(help: "Committing threads and tasks in the child.") var writers: Int = 4
    @Option(help: "Engines to alternate between (io_uring, posix).") var engines: [String] = ["io_uring", "posix"]
    @Flag(help: "Never encrypt (default: every other pair of cycles is encrypted).") var noEncryption = false
    @Flag(help: "Self-test: children acknowledge records before they are durable; succeed only if losses are found.")
    var expectLoss = false

    func run() throws {
        let seed = self.seed ?? UInt64.random(in: 1...UInt64.max)
        var rng = SplitMix64(seed: seed)
        let ownDirectory = directory == nil
        let root = try directory ?? temporaryDirectory()
        let walDirectory = root + "/wal"
        let keyFile = root + "/wal.key"
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: keyFile))
        print("wal-crash: \(cycles) cycles in \(walDirectory), seed \(seed), engines \(engines.joined(separator: "/")), encryption \(noEncryption ? "off" : "alternating")")

        let workload = Workload(seed: seed)
        let verifier = LogVerifier(workload: workload)
        var acknowledged: [LSN: RecordID] = [:]
        var totals = (checked: 0, lost: 0, acknowledged: 0, killedBeforeReady: 0)
        let start = Date()

        for cycle in 0..<cycles {
            let engine = engines[cycle % engines.count]
            let encrypted = !noEncryption && (cycle / 2) % 2 == 1
            let delay = Int(rng.next() % UInt64(maxDelayMilliseconds + 1))
            let outcome = try ChildRun.start(arguments: [
                "child", "--directory", walDirectory, "--cycle", String(cycle), "--seed", String(seed),
                "--engine", engine, "--writers", String(writers),
            ] + (encrypted ? ["--key-file", keyFile] : []) + (expectLoss ? ["--ack-before-durable"] : []),
                killAfterMilliseconds: delay)
            guard outcome.killed else {
                throw CrashFailure("cycle \(cycle): the child exited by itself (\(outcome.status)) before the kill: \(outcome.errorOutput)")
            }
            if !outcome.ready { totals.killedBeforeReady += 1 }
            for line in outcome.lines where line != "ready" {
                let fields = line.split(separator: " ")
                guard fields.count == 4, let lsn = LSN(fields[0]), let c = UInt32(fields[1]), let w = UInt32(fields[2]),
                      let s = UInt64(fields[3]) else { throw CrashFailure("cycle \(cycle): unreadable report line \(line)") }
                acknowledged[lsn] = RecordID(cycle: c, writer: w, seq: s)
                totals.acknowledged += 1
            }

            // Reopen (recovery cuts the torn tail), verify, and prove the WAL takes commits again.
            let wal = try SegmentedWAL(configuration: CrashSetup.configuration(directory: walDirectory, engine: engine, keyFile: keyFile))
            let report = verifier.verify(wal, acknowledged: acknowledged)
            totals.checked += report.acknowledgedChecked
            totals.lost += report.lost
            if expectLoss {
                if report.lost > 0 {
                    print("self-test: cycle \(cycle) found \(report.lost) records acknowledged before they were durable and lost, as it must")
                    try wal.close()
                    if ownDirectory { try? FileManager.default.removeItem(atPath: root) }
                    return
                }
                // Truncate the acknowledgements: the unsynced records of this cycle may still be lost next time.
                acknowledged = [:]
                try wal.close()
                continue
            }
            if !report.problems.isEmpty {
                throw CrashFailure("cycle \(cycle) (\(engine), encryption \(encrypted ? "on" : "off"), killed after \(delay) ms, seed \(seed)):\n  "
                                   + report.problems.prefix(20).joined(separator: "\n  "))
            }
            let probe = RecordID(cycle: UInt32(cycle), writer: 0xFFFF, seq: 0)
            let (tenant, vshard) = workload.routing(probe)
            let probeLSN = try wal.commit(.put, tenant: tenant, vshard: vshard, payload: workload.payload(probe))
            guard probeLSN == report.nextLSN else {
                throw CrashFailure("cycle \(cycle): the first commit after reopen got LSN \(probeLSN), expected \(report.nextLSN)")
            }
            acknowledged[probeLSN] = probe
            if try wal.totalSize > 16 << 20 {
                // Checkpoint halfway through what is there; acknowledgements below it may go.
                let checkpoint = report.firstLSN + (probeLSN - report.firstLSN) / 2
                _ = try wal.truncate(before: checkpoint)
                let first = try wal.segments().first?.firstLSN ?? checkpoint
                guard first <= checkpoint else {
                    throw CrashFailure("cycle \(cycle): truncation before \(checkpoint) deleted records from \(first)")
                }
                acknowledged = acknowledged.filter { $0.key >= first }
            }
            try wal.close()
            if (cycle + 1) % 10 == 0 || cycle + 1 == cycles {
                print("  \(cycle + 1) cycles, \(totals.acknowledged) acknowledged, \(totals.checked) checks, lost \(totals.lost), "
                      + "\(report.recordsReplayed) records in the log now")
            }
        }
        if expectLoss { throw CrashFailure("self-test: \(cycles) cycles found no loss although children acknowledged unsynced records") }
        let seconds = Date().timeIntervalSince(start)
        print("cycles \(cycles), acknowledged records checked \(totals.checked) (\(totals.acknowledged) acknowledged), lost = \(totals.lost)"
              + "; \(totals.killedBeforeReady) kills during open; \(Int(seconds)) s")
        if ownDirectory { try? FileManager.default.removeItem(atPath: root) }
    }

    private func temporaryDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array((base + "/wal-crash-XXXXXX").utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CrashFailure("cannot create a directory under \(base)")
        }
        return String(cString: result)
    }
}

struct CrashFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
