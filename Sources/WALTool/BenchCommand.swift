import ArgumentParser
import Foundation
import Glibc
import Metrics
import Synchronization
import Histogram
import WAL

/// `wal bench`: appends records for a while with periodic commits, from one or more writer
/// threads, and reports throughput, commit latency percentiles and flush counts.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Append records with periodic commits and print throughput, commit latency percentiles and flush counts."
    )

    @Option(help: "WAL directory (default: a new temporary directory under /tmp, removed afterwards).")
    var directory: String?

    @Option(help: "Seconds to run.")
    var duration: Double = 5

    @Option(help: "Payload bytes per record.")
    var recordSize: Int = 100

    @Option(help: "Each writer commits every this many records: appends the others, then commits the last (1 = every record is a commit).")
    var syncEvery: Int = 16

    @Option(help: "Concurrent writer threads, each committing on its own (group commit batches them).")
    var writers: Int = 1

    @Flag(name: .customLong("async"), help: "Writers are Swift tasks using `await commit` instead of threads blocking in `commit`.")
    var asyncWriters = false

    @Flag(help: "Streaming writers: request durability of each batch and keep appending, waiting for the previous batch's durability before requesting the next (latency then spans two batches).")
    var pipeline = false

    @Option(help: "Group commit delay in microseconds (WALConfiguration.maxBatchDelay).")
    var batchDelay: Int = 0

    @Option(help: "I/O engine.")
    var engine: IOEngineChoice = .automatic

    @Option(help: "O_DIRECT policy.")
    var directIO: DirectIOPolicy = .automatic

    @Option(help: "Bytes in each of the writer's ring buffers (WALConfiguration.bufferSize, a multiple of 4096; default: the library's).")
    var bufferSize: Int?

    @Option(help: "Segment target size in bytes.")
    var segmentSize: Int64 = 64 * 1024 * 1024

    @Option(help: "How io_uring makes a sync durable.")
    var uringSync: IOUringSyncMethod = .adaptive

    @Option(help: "Flushes group commit keeps in flight (WALConfiguration.flushesInFlight, 1...16; io_uring only, POSIX keeps one; default: the library's).")
    var flushesInFlight: Int?

    @Option(help: "Next-segment preallocation.")
    var preallocation: SegmentPreallocation = .allocated

    @Flag(help: "Encrypt records (AES-256-GCM) with a random key.")
    var encrypt = false

    @Flag(help: "After writing, drop the page cache (when root) and replay the whole log, checking every CRC; report replay MB/s.")
    var replay = false

    @Flag(help: "Write nothing: drop the page cache (when root) and replay the existing log in --directory, reporting MB/s (W5 on a log of your choosing).")
    var replayOnly = false

    @Flag(help: "Write nothing: drop the page cache (when root), open the existing WAL in --directory for writing and close it, reporting how long the open took (the cost of --open-verification).")
    var openOnly = false

    @Option(help: "How much of the log opening checks: recent (segment names, the last two segments) or full (WALConfiguration.openVerification).")
    var openVerification: OpenVerification = .recent

    @Option(help: "Live tailers (`records(from:follow:)`) reading while the writers run; each must receive every record. Measures what tailing costs committers.")
    var tailers: Int = 0

    @Option(help: "Write the commit-latency distribution to this file in HdrHistogram's percentile-distribution format (.hgrm; values in milliseconds), as HdrHistogram's plotter reads it.")
    var hgrm: String?

    @Option(help: "Write the commit latency over time to this file as JSON lines: per --timeline-interval the commits that returned in it and their p50, p99 and max (µs), and the moment each segment rollover finished. Keeps every commit's time and latency in memory (16 bytes each).")
    var timeline: String?

    @Option(help: "Milliseconds per --timeline interval.")
    var timelineInterval: Double = 100

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard recordSize >= 0, recordSize <= 64 * 1024 * 1024 else { throw ValidationError("--record-size must be 0...67108864") }
        guard syncEvery >= 1 else { throw ValidationError("--sync-every must be at least 1") }
        guard writers >= 1, writers <= 4096 else { throw ValidationError("--writers must be 1...4096") }
        guard batchDelay >= 0 else { throw ValidationError("--batch-delay must not be negative") }
        guard tailers >= 0, tailers <= 1024 else { throw ValidationError("--tailers must be 0...1024") }
        guard timelineInterval >= 0.001 else { throw ValidationError("--timeline-interval must be at least 0.001 (1 µs)") }
    }

    func run() throws {
        if replayOnly {
            guard let directory else { throw CLIError("--replay-only needs --directory") }
            dropPageCache()
            let start = monotonicNanoseconds()
            var stream = SegmentedWAL.records(in: directory)
            var bytes = 0, count = 0
            do throws(WALError) {
                while let record = try stream.next() { bytes += record.payload.count + WALRecord.headerSize; count += 1 }
            } catch {
                throw CLIError("replay failed: \(error)")
            }
            let seconds = Double(monotonicNanoseconds() - start) / 1e9
            print("{\"records\":\(count),\"bytes\":\(bytes),\"seconds\":\(format(seconds, 3)),\"replayMegabytesPerSecond\":\(format(Double(bytes) / seconds / 1e6, 1))}")
            return
        }
        if openOnly {
            guard let directory else { throw CLIError("--open-only needs --directory") }
            var configuration = WALConfiguration(directory: directory)
            configuration.openVerification = openVerification
            configuration.engine = engine
            dropPageCache()
            let start = monotonicNanoseconds()
            do throws(WALError) {
                try SegmentedWAL(configuration: configuration).close()
            } catch {
                throw CLIError("open failed: \(error)")
            }
            let seconds = Double(monotonicNanoseconds() - start) / 1e9
            print("{\"openVerification\":\"\(openVerification.rawValue)\",\"seconds\":\(format(seconds, 4))}")
            return
        }
        let temporary = directory == nil
        let path = try directory ?? makeTemporaryDirectory()
        defer { if temporary { removeTree(path) } }

        var configuration = WALConfiguration(directory: path)
        configuration.engine = engine
        configuration.directIO = directIO
        configuration.segmentTargetSize = segmentSize
        if let bufferSize { configuration.bufferSize = bufferSize }
        configuration.preallocation = preallocation
        configuration.ioUringSyncMethod = uringSync
        if let flushesInFlight { configuration.flushesInFlight = flushesInFlight }
        if encrypt { configuration.encryption = KeyRing(current: EncryptionKey.random(id: 1)) }
        configuration.maxBatchDelay = .microseconds(batchDelay)
        configuration.logger = cliLogger()
        let counters = BenchCounters.bootstrap(timestamping: timeline == nil ? [] : ["wal_rollovers_total"])
        let wal: SegmentedWAL
        do {
            wal = try SegmentedWAL(configuration: configuration)
        } catch {
            throw CLIError(error.description)
        }

        let payload = (0..<recordSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let tailing = LiveTailers(wal: wal, count: tailers)
        let cachedBefore = meminfoCachedBytes()
        let cpuBefore = processCPUSeconds()
        let start = monotonicNanoseconds()
        let deadline = start + UInt64(duration * 1e9)
        let outcome = Tally()
        let writer = BenchWriter(wal: wal, payload: payload, syncEvery: syncEvery, start: start, deadline: deadline,
                                 keepsSamples: timeline != nil)
        let pipeline = self.pipeline
        let done = DispatchGroup()
        for _ in 0..<writers {
            done.enter()
            if asyncWriters {
                Task.detached {
                    outcome.add(await writer.runAsync())
                    done.leave()
                }
            } else {
                let thread = Thread {
                    outcome.add(pipeline ? writer.runPipelined() : writer.runBlocking())
                    done.leave()
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
        }
        let progress = json || isatty(STDERR_FILENO) == 0 ? nil : ProgressLine(start: start, counters: counters)
        done.wait()
        let writersDone = monotonicNanoseconds()
        progress?.stop()
        do throws(WALError) {
            try wal.close()
        } catch {
            throw CLIError(error.description)
        }
        let tailed = tailing.results()
        let (records, commits, latency, failure) = outcome.state.withLock { ($0.records, $0.commits, $0.latency, $0.failure) }
        if let failure { throw CLIError(failure.description) }
        for (index, outcome) in tailed.enumerated() {
            switch outcome {
            case .success(let count) where count == records: continue
            case .success(let count): throw CLIError("tailer \(index) received \(count) records, \(records) were appended")
            case .failure(let error): throw CLIError("tailer \(index) failed: \(error)")
            }
        }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        let cpuSeconds = processCPUSeconds() - cpuBefore
        let cachedAfter = meminfoCachedBytes()
        if let hgrm {
            var distribution = ""
            latency.outputPercentileDistribution(to: &distribution, outputValueUnitScalingRatio: 1000)
            try write(distribution, to: hgrm)
        }
        if let timeline {
            let samples = outcome.state.withLock { $0.samples }
            let rollovers = counters.moments("wal_rollovers_total").map { $0 >= start ? $0 - start : 0 }
            let entries = BenchTimeline.entries(samples: samples, rollovers: rollovers, interval: UInt64(timelineInterval * 1e6),
                                                elapsed: writersDone - start)
            try write(BenchTimeline.jsonLines(entries), to: timeline)
        }
        var replayMegabytesPerSecond: Double?
        if replay {
            dropPageCache()
            let replayStart = monotonicNanoseconds()
            var stream = SegmentedWAL.records(in: path, keyRing: configuration.encryption)
            var replayedBytes = 0
            var replayed = 0
            do throws(WALError) {
                while let record = try stream.next() {
                    replayedBytes += record.payload.count + WALRecord.headerSize
                    replayed += 1
                }
            } catch {
                throw CLIError("replay failed: \(error)")
            }
            guard replayed == records else { throw CLIError("replay returned \(replayed) records, \(records) were committed") }
            replayMegabytesPerSecond = Double(replayedBytes) / (Double(monotonicNanoseconds() - replayStart) / 1e9) / 1e6
        }
        let bytes = Double(records * (recordSize + WALRecord.headerSize))
        let result = BenchResult(
            engine: wal.engine == .ioUring ? "io_uring (\(uringSync), \(configuration.flushesInFlight) in flight)" : wal.engine.rawValue, directIO: wal.isDirectIO, preallocation: preallocation.rawValue, encrypted: encrypt, recordSize: recordSize,
            syncEvery: syncEvery, writers: writers, asyncWriters: asyncWriters,
            seconds: elapsed, records: records, commits: commits, fdatasyncs: counters.value("wal_fdatasyncs_total"),
            recordsPerSecond: Double(records) / elapsed, megabytesPerSecond: bytes / elapsed / 1e6,
            commitLatencyMicros: [
                "p50": latency.valueAtPercentile(50), "p90": latency.valueAtPercentile(90),
                "p99": latency.valueAtPercentile(99), "p99.9": latency.valueAtPercentile(99.9), "max": latency.max,
            ],
            pageCacheGrowthBytes: cachedAfter - cachedBefore,
            replayMegabytesPerSecond: replayMegabytesPerSecond,
            tailers: tailers,
            cpuSeconds: cpuSeconds,
            device: DeviceInfo.of(path: path)
        )
        print(json ? result.json : result.table)
    }

    private func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw CLIError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}

struct BenchResult {
    var engine: String
    var directIO: Bool
    var preallocation: String
    var encrypted: Bool
    var recordSize: Int
    var syncEvery: Int
    var writers: Int
    var asyncWriters: Bool
    var seconds: Double
    var records: Int
    var commits: Int
    var fdatasyncs: Int64
    var recordsPerSecond: Double
    var megabytesPerSecond: Double
    var commitLatencyMicros: [String: UInt64]
    var pageCacheGrowthBytes: Int64
    var replayMegabytesPerSecond: Double?
    var tailers: Int
    /// CPU time (user + system) of the whole process while the writers ran.
    var cpuSeconds: Double
    /// The block device the WAL directory lives on.
    var device: DeviceInfo?

    var cpuMicrosPerCommit: Double { commits > 0 ? cpuSeconds * 1e6 / Double(commits) : 0 }

    var bytesWritten: Double { Double(records * (recordSize + WALRecord.headerSize)) }

    static let percentileKeys = ["p50", "p90", "p99", "p99.9", "max"]

    var table: String {
        var lines: [String] = []
        lines.append("engine            \(engine)")
        lines.append("O_DIRECT          \(directIO ? "on" : "off")")
        lines.append("preallocation     \(preallocation)")
        lines.append("encryption        \(encrypted ? "AES-256-GCM" : "off")")
        lines.append("record size       \(recordSize) B, commit every \(syncEvery) record(s), \(writers) \(asyncWriters ? "async task" : "thread") writer(s)")
        lines.append("duration          \(format(seconds, 2)) s")
        lines.append("records           \(records)")
        lines.append("commits           \(commits)")
        lines.append("fdatasyncs        \(fdatasyncs) (\(format(fdatasyncs > 0 ? Double(records) / Double(fdatasyncs) : 0, 1)) records per fdatasync)")
        lines.append("records/s         \(format(recordsPerSecond, 0))")
        lines.append("MB/s              \(format(megabytesPerSecond, 2))")
        let latencies = Self.percentileKeys.map { "\($0) \(commitLatencyMicros[$0] ?? 0)" }.joined(separator: "  ")
        lines.append("commit latency µs \(latencies)")
        lines.append("page cache growth \(pageCacheGrowthBytes / 1024) KiB (\(format(Double(pageCacheGrowthBytes) / max(bytesWritten, 1) * 100, 2)) % of the bytes written)")
        if let replayMegabytesPerSecond { lines.append("replay MB/s       \(format(replayMegabytesPerSecond, 1))") }
        if tailers > 0 { lines.append("live tailers      \(tailers), each received all \(records) records") }
        lines.append("CPU               \(format(cpuSeconds, 2)) s (\(format(cpuMicrosPerCommit, 1)) µs per commit)")
        if let device { lines.append("device            \(device.summary)") }
        return lines.joined(separator: "\n")
    }

    /// One JSON line; the keys are what scripts/bench-compare reads.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

extension BenchResult: Encodable {
    enum CodingKeys: String, CodingKey {
        case engine, directIO, preallocation, encrypted, recordSize, syncEvery, writers, seconds, records, commits, fdatasyncs
        case recordsPerSecond, megabytesPerSecond, commitLatencyMicros, pageCacheGrowthBytes, replayMegabytesPerSecond, tailers
        case cpuSeconds, cpuMicrosPerCommit, device
        case asyncWriters = "async"
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(engine, forKey: .engine)
        try container.encode(directIO, forKey: .directIO)
        try container.encode(preallocation, forKey: .preallocation)
        try container.encode(encrypted, forKey: .encrypted)
        try container.encode(recordSize, forKey: .recordSize)
        try container.encode(syncEvery, forKey: .syncEvery)
        try container.encode(writers, forKey: .writers)
        try container.encode(asyncWriters, forKey: .asyncWriters)
        try container.encode(Self.rounded(seconds, 3), forKey: .seconds)
        try container.encode(records, forKey: .records)
        try container.encode(commits, forKey: .commits)
        try container.encode(fdatasyncs, forKey: .fdatasyncs)
        try container.encode(Self.rounded(recordsPerSecond, 1), forKey: .recordsPerSecond)
        try container.encode(Self.rounded(megabytesPerSecond, 3), forKey: .megabytesPerSecond)
        try container.encode(commitLatencyMicros, forKey: .commitLatencyMicros)
        try container.encode(pageCacheGrowthBytes, forKey: .pageCacheGrowthBytes)
        try container.encode(replayMegabytesPerSecond.map { Self.rounded($0, 1) }, forKey: .replayMegabytesPerSecond)
        try container.encode(tailers, forKey: .tailers)
        try container.encode(Self.rounded(cpuSeconds, 3), forKey: .cpuSeconds)
        try container.encode(Self.rounded(cpuMicrosPerCommit, 2), forKey: .cpuMicrosPerCommit)
        try container.encode(device, forKey: .device)
    }

    private static func rounded(_ value: Double, _ digits: Int) -> Double {
        let scale = pow(10, Double(digits))
        return (value * scale).rounded() / scale
    }
}

/// What one writer measured.
struct WriterResult {
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var records = 0
    /// Every commit, for `--timeline` (empty without it).
    var samples: [TimelineSample] = []
    var failure: WALError?
}

/// What the writers measured, merged as each finishes.
final class Tally: Sendable {
    struct State {
        var records = 0
        var commits = 0
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var samples: [TimelineSample] = []
        var failure: WALError?
    }

    let state = Mutex(State())

    func add(_ result: WriterResult) {
        state.withLock {
            $0.records += result.records
            $0.commits += Int(result.latency.totalCount)
            $0.latency.add(result.latency)
            $0.samples += result.samples
            if $0.failure == nil { $0.failure = result.failure }
        }
    }
}

/// One writer's loop: `syncEvery - 1` appends and a commit (latency measured from the first
/// append to the commit's return), until the deadline.
struct BenchWriter: Sendable {
    let wal: SegmentedWAL
    let payload: [UInt8]
    let syncEvery: Int
    /// When the run began (`monotonicNanoseconds()`).
    let start: UInt64
    let deadline: UInt64
    /// Keep every commit's time and latency (`--timeline`).
    let keepsSamples: Bool

    func runBlocking() -> WriterResult {
        var result = WriterResult()
        do throws(WALError) {
            while true {
                let before = monotonicNanoseconds()
                for _ in 1..<syncEvery { try wal.append(.put, tenant: 1, vshard: 0, payload: payload) }
                try wal.commit(.put, tenant: 1, vshard: 0, payload: payload)
                if record(&result, since: before) { break }
            }
        } catch {
            result.failure = error
        }
        return result
    }

    func runAsync() async -> WriterResult {
        var result = WriterResult()
        do throws(WALError) {
            while true {
                let before = monotonicNanoseconds()
                for _ in 1..<syncEvery { try wal.append(.put, tenant: 1, vshard: 0, payload: payload) }
                try await wal.commit(.put, tenant: 1, vshard: 0, payload: payload)
                if record(&result, since: before) { break }
            }
        } catch {
            result.failure = error
        }
        return result
    }

    /// Streaming without waiting: each batch's durability is requested, and awaited only after
    /// the next batch has been appended (its latency then spans two batches).
    func runPipelined() -> WriterResult {
        var result = WriterResult()
        do throws(WALError) {
            var previous: (lsn: LSN, start: UInt64)?
            while true {
                let before = monotonicNanoseconds()
                var last: LSN = 0
                for _ in 0..<syncEvery { last = try wal.append(.put, tenant: 1, vshard: 0, payload: payload) }
                try wal.requestDurability(upTo: last)
                if let previous {
                    try wal.waitUntilDurable(previous.lsn)
                    if record(&result, since: previous.start) {
                        try wal.waitUntilDurable(last)
                        result.records += syncEvery
                        break
                    }
                }
                previous = (last, before)
            }
        } catch {
            result.failure = error
        }
        return result
    }

    /// Counts a durable batch; true once the deadline has passed.
    private func record(_ result: inout WriterResult, since began: UInt64) -> Bool {
        let now = monotonicNanoseconds()
        let micros = (now - began) / 1000
        _ = result.latency.record(micros)
        if keepsSamples { result.samples.append(TimelineSample(end: now - start, micros: micros)) }
        result.records += syncEvery
        return now >= deadline
    }
}
