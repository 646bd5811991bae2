import ArgumentParser
import Dispatch
import Foundation
import WAL

/// The process that gets killed: commits records from several threads, an async task and a
/// batching writer, and reports each acknowledged LSN on standard output the moment its
/// commit (or sync) returns — one `write(2)` per line, atomic on a pipe.
struct CrashChild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "child", abstract: "Commit records until killed (run by `wal-crash run`).", shouldDisplay: false)

    @Option var directory: String
    @Option var cycle: UInt32
    @Option var seed: UInt64
    @Option var engine: String
    @Option(name: .customLong("key-file")) var keyFile: String?
    @Option var writers: Int = 4
    /// Self-test of the campaign: blocking writers report LSNs after `append`, before they are
    /// durable. The campaign must then find losses.
    @Flag(name: .customLong("ack-before-durable")) var ackBeforeDurable = false

    func run() throws {
        let wal = try SegmentedWAL(configuration: CrashSetup.configuration(directory: directory, engine: engine, keyFile: keyFile))
        report("ready")
        let workload = Workload(seed: seed)
        let cycle = self.cycle
        let blocking = max(writers - 2, 1)
        let commit = !ackBeforeDurable
        for writer in 0..<blocking {
            Thread.detachNewThread {
                Self.guarded {
                    var seq: UInt64 = 0
                    while true {
                        let id = RecordID(cycle: cycle, writer: UInt32(writer), seq: seq)
                        let lsn = try Self.append(id, to: wal, workload: workload, commit: commit)
                        report("\(lsn) \(cycle) \(writer) \(seq)")
                        seq += 1
                    }
                }
            }
        }
        // A batching writer: appends a few records, then one sync acknowledges them all.
        Thread.detachNewThread {
            Self.guarded {
                var seq: UInt64 = 0
                var rng = SplitMix64(seed: UInt64(cycle))
                while true {
                    var batch: [(LSN, UInt64)] = []
                    for _ in 0...(rng.next() % 8) {
                        let id = RecordID(cycle: cycle, writer: UInt32(blocking), seq: seq)
                        batch.append((try Self.append(id, to: wal, workload: workload, commit: false), seq))
                        seq += 1
                    }
                    try wal.sync()
                    for (lsn, seq) in batch { report("\(lsn) \(cycle) \(blocking) \(seq)") }
                }
            }
        }
        // An async committer: its waits never block a thread.
        let asyncWriter = UInt32(blocking + 1)
        Task.detached {
            var seq: UInt64 = 0
            while true {
                let id = RecordID(cycle: cycle, writer: asyncWriter, seq: seq)
                let (tenant, vshard) = workload.routing(id)
                do {
                    let lsn = try await wal.commit(.put, tenant: tenant, vshard: vshard, payload: workload.payload(id))
                    report("\(lsn) \(cycle) \(asyncWriter) \(seq)")
                } catch {
                    Self.die("async commit failed: \(error)")
                }
                seq += 1
            }
        }
        // Killed long before this in a campaign; the bound keeps a stray child from running on.
        sleep(60)
        Self.die("not killed within 60 s")
    }

    private static func append(_ id: RecordID, to wal: SegmentedWAL, workload: Workload, commit: Bool) throws -> LSN {
        let (tenant, vshard) = workload.routing(id)
        let payload = workload.payload(id)
        return commit ? try wal.commit(.put, tenant: tenant, vshard: vshard, payload: payload)
                      : try wal.append(.put, tenant: tenant, vshard: vshard, payload: payload)
    }

    private static func guarded(_ body: () throws -> Void) {
        do { try body() } catch { die("writer failed: \(error)") }
    }

    /// Any failure in the child is a finding: nothing here should fail before the kill.
    private static func die(_ message: String) -> Never {
        FileHandle.standardError.write(Data("wal-crash child: \(message)\n".utf8))
        Foundation.exit(3)
    }
}

/// Writes one line to standard output with a single write(2) (atomic on a pipe below PIPE_BUF).
private func report(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    let written = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    if written != bytes.count { Foundation.exit(4) }  // the parent is gone
}

/// The WAL configuration both processes use: small segments and buffers, so that rollovers
/// and records spanning buffers happen within a fraction of a second.
enum CrashSetup {
    static let segmentSize: Int64 = 256 * 1024

    static func configuration(directory: String, engine: String, keyFile: String?) throws -> WALConfiguration {
        var configuration = WALConfiguration(directory: directory)
        configuration.segmentTargetSize = segmentSize
        configuration.bufferSize = 64 * 1024
        guard let choice = IOEngineChoice(rawValue: engine) else { throw ValidationError("unknown engine \(engine)") }
        configuration.engine = choice
        if let keyFile {
            configuration.encryption = KeyRing(current: try EncryptionKey(id: 1, contentsOfFile: keyFile))
        }
        return configuration
    }
}
