import Benchmark
import Foundation
import WAL

/// Micro-benchmarks of the WAL's hot paths. Wall time is reported but never gated on (the
/// disk here varies 10–30 % between runs); the thresholds in Thresholds/ gate only a count that
/// is stable: allocations per operation (0 per append and per commit).
///
/// Every benchmark runs on a fresh WAL in a temporary directory under /tmp (ext4, O_DIRECT).
let benchmarks: @Sendable () -> Void = {
    // WAL_BENCHMARK_GATE=1 measures only the gated counts (what `thresholds check` compares).
    let gate = ProcessInfo.processInfo.environment["WAL_BENCHMARK_GATE"] != nil
    let countMetrics: [BenchmarkMetric] = gate ? [.mallocCountTotal] : [.wallClock, .throughput, .mallocCountTotal]
    Benchmark.defaultConfiguration = .init(metrics: countMetrics, timeUnits: .microseconds, maxDuration: .seconds(3),
                                           maxIterations: 100_000)

    Benchmark("append-100B-buffered", configuration: .init(scalingFactor: .kilo)) { benchmark in
        try withWAL(engine: .posix) { wal in
            let payload = [UInt8](repeating: 7, count: 100)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try wal.append(.put, payload: payload)) }
            benchmark.stopMeasurement()
        }
    }

    for engine in [IOEngineChoice.posix, .ioUring] {
        Benchmark("commit-100B-\(engine.rawValue)") { benchmark in
            try withWAL(engine: engine) { wal in
                let payload = [UInt8](repeating: 7, count: 100)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { blackHole(try wal.commit(.put, payload: payload)) }
                benchmark.stopMeasurement()
            }
        }
    }

    Benchmark("stream-256x4KiB-sync-posix", configuration: .init(metrics: countMetrics + (gate ? [] : [.writeBytesPhysical]))) { benchmark in
        try withWAL(engine: .posix) { wal in
            let payload = [UInt8](repeating: 7, count: 4096)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for _ in 0..<256 { try wal.append(.put, payload: payload) }
                try wal.sync()
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("replay-10000x100B", configuration: .init(scalingFactor: .one)) { benchmark in
        try withWAL(engine: .posix) { wal in
            let payload = [UInt8](repeating: 7, count: 100)
            for _ in 0..<10_000 { try wal.append(.put, payload: payload) }
            try wal.sync()
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var stream = wal.records(from: 1)
                var count = 0
                while let record = try stream.next() { count += record.payload.count }
                blackHole(count)
            }
            benchmark.stopMeasurement()
        }
    }
}

/// Runs `body` with a WAL in a new temporary directory, closed and removed afterwards.
func withWAL(engine: IOEngineChoice, _ body: (SegmentedWAL) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wal-benchmark-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = WALConfiguration(directory: directory)
    configuration.engine = engine
    let wal = try SegmentedWAL(configuration: configuration)
    try body(wal)
    try wal.close()
}
