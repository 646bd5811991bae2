import ArgumentParser
import Glibc
import Histogram
import WAL

/// `wal bench`: appends records for a while with periodic syncs and reports throughput and
/// sync latency percentiles.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Append records with periodic syncs and print throughput and sync latency percentiles."
    )

    @Option(help: "WAL directory (default: a new temporary directory under /tmp, removed afterwards).")
    var directory: String?

    @Option(help: "Seconds to run.")
    var duration: Double = 5

    @Option(help: "Payload bytes per record.")
    var recordSize: Int = 100

    @Option(help: "Sync after this many records (1 = every append is a commit).")
    var syncEvery: Int = 16

    @Option(help: "I/O engine: automatic, io_uring or posix.")
    var engine: String = "automatic"

    @Option(help: "O_DIRECT policy: automatic, required or disabled.")
    var directIO: String = "automatic"

    @Option(help: "Segment target size in bytes.")
    var segmentSize: Int64 = 64 * 1024 * 1024

    @Option(help: "How io_uring makes a sync durable: adaptive, dsyncWrites or linkedFdatasync.")
    var uringSync: String = "adaptive"

    @Option(help: "Next-segment preallocation: none, allocated or zeroFilled.")
    var preallocation: String = "allocated"

    @Flag(help: "Encrypt records (AES-256-GCM) with a random key.")
    var encrypt = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard recordSize >= 0, recordSize <= 64 * 1024 * 1024 else { throw ValidationError("--record-size must be 0...67108864") }
        guard syncEvery >= 1 else { throw ValidationError("--sync-every must be at least 1") }
        guard IOEngineChoice(rawValue: engine) != nil else { throw ValidationError("--engine must be automatic, io_uring or posix") }
        guard DirectIOPolicy(rawValue: directIO) != nil else { throw ValidationError("--direct-io must be automatic, required or disabled") }
        guard IOUringSyncMethod(rawValue: uringSync) != nil else {
            throw ValidationError("--uring-sync must be adaptive, dsyncWrites or linkedFdatasync")
        }
        guard SegmentPreallocation(rawValue: preallocation) != nil else {
            throw ValidationError("--preallocation must be none, allocated or zeroFilled")
        }
    }

    func run() throws {
        let temporary = directory == nil
        let path = try directory ?? makeTemporaryDirectory()
        defer { if temporary { removeTree(path) } }

        var configuration = WALConfiguration(directory: path)
        configuration.engine = IOEngineChoice(rawValue: engine)!
        configuration.directIO = DirectIOPolicy(rawValue: directIO)!
        configuration.segmentTargetSize = segmentSize
        configuration.preallocation = SegmentPreallocation(rawValue: preallocation)!
        configuration.ioUringSyncMethod = IOUringSyncMethod(rawValue: uringSync)!
        if encrypt { configuration.encryption = KeyRing(current: EncryptionKey.random(id: 1)) }
        configuration.logger = cliLogger()
        let wal: SegmentedWAL
        do {
            wal = try SegmentedWAL(configuration: configuration)
        } catch {
            throw CLIError(error.description)
        }

        let payload = (0..<recordSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let cachedBefore = meminfoCachedBytes()
        let start = monotonicNanoseconds()
        let deadline = start + UInt64(duration * 1e9)
        var records = 0
        var syncs = 0
        do {
            while true {
                for _ in 0..<syncEvery {
                    try wal.append(.put, tenant: 1, vshard: 0, payload: payload)
                }
                records += syncEvery
                let before = monotonicNanoseconds()
                try wal.sync()
                let after = monotonicNanoseconds()
                _ = latency.record((after - before) / 1000)
                syncs += 1
                if after >= deadline { break }
            }
            try wal.close()
        } catch {
            throw CLIError(error.description)
        }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        let cachedAfter = meminfoCachedBytes()
        let bytes = Double(records * (recordSize + 30))
        let result = BenchResult(
            engine: wal.engine == .ioUring ? "io_uring (\(uringSync))" : wal.engine.rawValue, directIO: wal.isDirectIO, preallocation: preallocation, encrypted: encrypt, recordSize: recordSize,
            syncEvery: syncEvery,
            seconds: elapsed, records: records, syncs: syncs,
            recordsPerSecond: Double(records) / elapsed, megabytesPerSecond: bytes / elapsed / 1e6,
            syncLatencyMicros: [
                "p50": latency.valueAtPercentile(50), "p90": latency.valueAtPercentile(90),
                "p99": latency.valueAtPercentile(99), "p99.9": latency.valueAtPercentile(99.9), "max": latency.max,
            ],
            pageCacheGrowthBytes: cachedAfter - cachedBefore
        )
        print(json ? result.json : result.table)
    }
}

struct BenchResult {
    var engine: String
    var directIO: Bool
    var preallocation: String
    var encrypted: Bool
    var recordSize: Int
    var syncEvery: Int
    var seconds: Double
    var records: Int
    var syncs: Int
    var recordsPerSecond: Double
    var megabytesPerSecond: Double
    var syncLatencyMicros: [String: UInt64]
    var pageCacheGrowthBytes: Int64

    static let percentileKeys = ["p50", "p90", "p99", "p99.9", "max"]

    var table: String {
        var lines: [String] = []
        lines.append("engine            \(engine)")
        lines.append("O_DIRECT          \(directIO ? "on" : "off")")
        lines.append("preallocation     \(preallocation)")
        lines.append("encryption        \(encrypted ? "AES-256-GCM" : "off")")
        lines.append("record size       \(recordSize) B, sync every \(syncEvery) record(s)")
        lines.append("duration          \(format(seconds, 2)) s")
        lines.append("records           \(records)")
        lines.append("syncs             \(syncs)")
        lines.append("records/s         \(format(recordsPerSecond, 0))")
        lines.append("MB/s              \(format(megabytesPerSecond, 2))")
        let latencies = Self.percentileKeys.map { "\($0) \(syncLatencyMicros[$0] ?? 0)" }.joined(separator: "  ")
        lines.append("sync latency µs   \(latencies)")
        lines.append("page cache growth \(pageCacheGrowthBytes / 1024) KiB")
        return lines.joined(separator: "\n")
    }

    var json: String {
        let latencies = Self.percentileKeys.map { "\"\($0)\":\(syncLatencyMicros[$0] ?? 0)" }.joined(separator: ",")
        return "{\"engine\":\"\(engine)\",\"directIO\":\(directIO),\"preallocation\":\"\(preallocation)\",\"encrypted\":\(encrypted),\"recordSize\":\(recordSize),\"syncEvery\":\(syncEvery),"
            + "\"seconds\":\(format(seconds, 3)),\"records\":\(records),\"syncs\":\(syncs),"
            + "\"recordsPerSecond\":\(format(recordsPerSecond, 1)),\"megabytesPerSecond\":\(format(megabytesPerSecond, 3)),"
            + "\"syncLatencyMicros\":{\(latencies)},\"pageCacheGrowthBytes\":\(pageCacheGrowthBytes)}"
    }
}
