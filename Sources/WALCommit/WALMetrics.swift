import Metrics
import WALIO

/// The WAL's metrics, reported through swift-metrics to whatever backend the application
/// bootstrapped (none is forced: without one, they cost a no-op call each).
///
/// | label | kind | what |
/// |---|---|---|
/// | `wal_records_total` | counter | records appended |
/// | `wal_bytes_total` | counter | payload bytes appended |
/// | `wal_flushes_total` | counter | buffer writes (jobs) issued |
/// | `wal_fdatasyncs_total` | counter | flushes that ended with a sync |
/// | `wal_records_per_flush` | recorder | records made durable by one syncing flush |
/// | `wal_commit_duration` | timer | `commit` from call to durable, nanoseconds |
/// | `wal_rollovers_total` | counter | segments sealed for a new one |
/// | `wal_engine` | gauge, dimension `engine` | 1 for the engine in use |
///
/// Every metric also carries ``WALConfiguration/metricsDimensions``.
package struct WALMetrics: Sendable {
    let records: Counter
    let bytes: Counter
    let flushes: Counter
    let fdatasyncs: Counter
    let recordsPerFlush: Recorder
    package let commitDuration: Metrics.Timer
    let rollovers: Counter

    init(dimensions: [(String, String)], engine: IOEngineKind) {
        records = Counter(label: "wal_records_total", dimensions: dimensions)
        bytes = Counter(label: "wal_bytes_total", dimensions: dimensions)
        flushes = Counter(label: "wal_flushes_total", dimensions: dimensions)
        fdatasyncs = Counter(label: "wal_fdatasyncs_total", dimensions: dimensions)
        recordsPerFlush = Recorder(label: "wal_records_per_flush", dimensions: dimensions)
        commitDuration = Metrics.Timer(label: "wal_commit_duration", dimensions: dimensions)
        rollovers = Counter(label: "wal_rollovers_total", dimensions: dimensions)
        Gauge(label: "wal_engine", dimensions: dimensions + [("engine", engine.rawValue)]).record(1)
    }
}
