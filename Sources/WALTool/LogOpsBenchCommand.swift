import ArgumentParser
import Foundation
import Glibc
import Logging
import WAL

/// `wal bench-ops`: what the consensus-log operations cost — `truncate(after:)` within the
/// active segment and across 10 segments, `reset(to:)`, `setMetadata` — and point reads at
/// random LSNs over a large log, cold and warm, against a scan from the segment's start.
struct LogOpsBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ops",
        abstract: "Measure truncate(after:), reset(to:), setMetadata and point reads (p50/p99 per operation).",
        discussion: "Cold point reads drop the page cache (root only; otherwise they are reported as warm).")

    @Option(help: "Directory to work in (default: a new temporary directory under /tmp, removed afterwards).")
    var directory: String?

    @Option(help: "Timed repetitions of each cut and reset.")
    var rounds: Int = 30

    @Option(help: "Timed setMetadata calls.")
    var metadataRounds: Int = 300

    @Option(help: "Size of the log for point reads, in MiB.")
    var logSize: Int = 1024

    @Option(help: "Payload bytes per record of that log.")
    var recordSize: Int = 1000

    @Option(help: "Random point reads per measurement.")
    var reads: Int = 2000

    @Flag(help: "Print JSON.")
    var json = false

    struct Timing: Codable {
        var operation: String
        var count: Int
        var p50Micros: Double
        var p99Micros: Double
        var meanMicros: Double
        var perSecond: Double
    }

    struct Output: Codable {
        var timings: [Timing]
        var logBytes: Int64
        var records: UInt64
        var coldCache: Bool
    }

    func run() throws {
        let root = directory ?? (FileManager.default.temporaryDirectory.path + "/wal-bench-ops-\(getpid())")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: root) } }
        var timings: [Timing] = []
        let payload = [UInt8](repeating: 0x5A, count: 100)

        // truncate(after:) within the active segment: 1,000 records, cut 500 back.
        try withWAL(root + "/cut-active", segmentSize: 64 << 20) { wal in
            timings.append(try time("truncate(after:) in the active segment", rounds) {
                for _ in 0..<1000 { try wal.append(.put, payload: payload) }
                try wal.sync()
                let cut = wal.nextLSN - 500
                return { try wal.truncate(after: cut) }
            })
        }
        // truncate(after:) across 10 segments of 1 MiB: the cut deletes 10 sealed segments.
        try withWAL(root + "/cut-segments", segmentSize: 1 << 20) { wal in
            let big = [UInt8](repeating: 0x33, count: 4000)
            timings.append(try time("truncate(after:) removing 10 segments", max(3, rounds / 3)) {
                let start = wal.nextLSN
                while try wal.segments().filter({ $0.firstLSN > start }).count < 11 {
                    for _ in 0..<64 { try wal.append(.put, payload: big) }
                    try wal.sync()
                }
                let cut = try wal.segments().filter { $0.firstLSN > start }[0].firstLSN + 1
                return { try wal.truncate(after: cut) }
            })
        }
        // reset(to:) of a log of 1,000 records.
        try withWAL(root + "/reset", segmentSize: 64 << 20) { wal in
            timings.append(try time("reset(to:)", rounds) {
                for _ in 0..<1000 { try wal.append(.put, payload: payload) }
                try wal.sync()
                let target = wal.nextLSN + 1000
                return { try wal.reset(to: target) }
            })
        }
        // setMetadata: a 64-byte blob (term, vote, commit index and some).
        try withWAL(root + "/metadata", segmentSize: 64 << 20) { wal in
            var blob = [UInt8](repeating: 7, count: 64)
            timings.append(try time("setMetadata (64 B)", metadataRounds) {
                blob[0] &+= 1
                let value = blob
                return { try wal.setMetadata(value) }
            })
        }

        // Point reads over a large log.
        let logDirectory = root + "/reads"
        var records: UInt64 = 0
        var logBytes: Int64 = 0
        try withWAL(logDirectory, segmentSize: 64 << 20) { wal in
            let record = [UInt8](repeating: 0x42, count: recordSize)
            let target = Int64(logSize) << 20
            while logBytes < target {
                for _ in 0..<1024 { try wal.append(.put, payload: record) }
                try wal.sync()
                logBytes += 1024 * Int64(recordSize + 30)
            }
            records = wal.nextLSN - 1
        }
        var generator = SystemRandomNumberGenerator()
        let lsns = (0..<reads).map { _ in UInt64.random(in: 1...records, using: &generator) }
        let canDrop = dropPageCache()
        try withWAL(logDirectory, segmentSize: 64 << 20) { wal in
            // First reads after open: each segment's first read builds its index (one scan).
            timings.append(try timeEach("record(at:) first reads after open\(canDrop ? ", cold cache" : "")", lsns) { lsn in
                _ = try wal.record(at: lsn)
            })
            _ = dropPageCache()
            timings.append(try timeEach("record(at:) index built\(canDrop ? ", cold cache" : "")", lsns.reversed()) { lsn in
                _ = try wal.record(at: lsn)
            })
            timings.append(try timeEach("record(at:) warm", lsns) { lsn in _ = try wal.record(at: lsn) })
            let scans = Array(lsns.prefix(max(20, reads / 20)))
            _ = dropPageCache()
            timings.append(try timeEach("scan from the segment's start\(canDrop ? ", cold cache" : "")", scans) { lsn in
                var stream = wal.records(from: lsn)
                _ = try stream.next()
            })
            timings.append(try timeEach("scan from the segment's start, warm", scans) { lsn in
                var stream = wal.records(from: lsn)
                _ = try stream.next()
            })
        }

        let output = Output(timings: timings, logBytes: logBytes, records: records, coldCache: canDrop)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
            return
        }
        print("log for point reads: \(records) records, \(logBytes >> 20) MiB")
        printTable([["operation", "count", "p50 µs", "p99 µs", "mean µs", "per second"]] + timings.map {
            [$0.operation, String($0.count), format($0.p50Micros, 1), format($0.p99Micros, 1), format($0.meanMicros, 1),
             format($0.perSecond, 0)]
        })
    }

    private func withWAL(_ path: String, segmentSize: Int64, _ body: (SegmentedWAL) throws -> Void) throws {
        var configuration = WALConfiguration(directory: path)
        configuration.segmentTargetSize = segmentSize
        configuration.logger = cliLogger()
        configuration.logger.logLevel = .warning  // one info line per cut would drown the table
        let wal = try SegmentedWAL(configuration: configuration)
        defer { try? wal.close() }
        try body(wal)
    }

    /// Times the operation `prepare` returns, `count` times (preparation untimed).
    private func time(_ name: String, _ count: Int, _ prepare: () throws -> (() throws -> Void)) throws -> Timing {
        var samples: [UInt64] = []
        for _ in 0..<count {
            let operation = try prepare()
            let start = monotonicNanoseconds()
            try operation()
            samples.append(monotonicNanoseconds() - start)
        }
        return summarize(name, samples)
    }

    private func timeEach<S: Sequence<UInt64>>(_ name: String, _ lsns: S, _ body: (UInt64) throws -> Void) throws -> Timing {
        var samples: [UInt64] = []
        for lsn in lsns {
            let start = monotonicNanoseconds()
            try body(lsn)
            samples.append(monotonicNanoseconds() - start)
        }
        return summarize(name, samples)
    }

    private func summarize(_ name: String, _ samples: [UInt64]) -> Timing {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
        }
        let total = Double(sorted.reduce(0, +))
        return Timing(operation: name, count: sorted.count, p50Micros: percentile(0.5), p99Micros: percentile(0.99),
                      meanMicros: total / Double(max(sorted.count, 1)) / 1000,
                      perSecond: total > 0 ? Double(sorted.count) / (total / 1e9) : 0)
    }

    /// Drops the page cache (root only); false when it cannot.
    private func dropPageCache() -> Bool {
        sync()
        guard let file = fopen("/proc/sys/vm/drop_caches", "w") else { return false }
        defer { fclose(file) }
        return fputs("3\n", file) >= 0
    }
}
