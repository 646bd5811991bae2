import CoreMetrics
import Synchronization

/// The benchmark's metrics backend: sums the WAL's counters (fdatasyncs, flushes) so the
/// report can show how many commits each fdatasync carried. Bootstrapped by the tool — an
/// application — never by the library.
///
/// Each counter is one atomic: the WAL counts every append under its lock, and a shared
/// dictionary behind a mutex there cost ~4 % of a streaming writer's cycles (perf, W3).
///
/// Counters named in `timestamping` (rare events such as `wal_rollovers_total`) also note the
/// moment of each increment (`monotonicNanoseconds()`), for `wal bench --timeline`.
final class BenchCounters: MetricsFactory, @unchecked Sendable {
    private let handlers = Mutex<[String: [Handler]]>([:])
    private let timestamping: Set<String>

    private final class Handler: CounterHandler, Sendable {
        let total = Atomic<Int64>(0)
        let moments: Moments?
        init(moments: Moments?) { self.moments = moments }
        func increment(by amount: Int64) {
            total.add(amount, ordering: .relaxed)
            moments?.times.withLock { $0.append(monotonicNanoseconds()) }
        }
        func reset() { total.store(0, ordering: .relaxed) }
    }

    private final class Moments: Sendable {
        let times = Mutex<[UInt64]>([])
    }

    private init(timestamping: Set<String>) {
        self.timestamping = timestamping
    }

    static func bootstrap(timestamping: Set<String> = []) -> BenchCounters {
        let counters = BenchCounters(timestamping: timestamping)
        MetricsSystem.bootstrap(counters)
        return counters
    }

    func value(_ label: String) -> Int64 {
        handlers.withLock { $0[label, default: []].reduce(0) { $0 + $1.total.load(ordering: .relaxed) } }
    }

    /// When each increment of a counter named in `timestamping` happened, in order.
    func moments(_ label: String) -> [UInt64] {
        handlers.withLock { $0[label, default: []].flatMap { $0.moments?.times.withLock { $0 } ?? [] } }.sorted()
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        let handler = Handler(moments: timestamping.contains(label) ? Moments() : nil)
        handlers.withLock { $0[label, default: []].append(handler) }
        return handler
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        NOOPMetricsHandler.instance
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler { NOOPMetricsHandler.instance }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        NOOPMetricsHandler.instance
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler { NOOPMetricsHandler.instance }
    func destroyCounter(_ handler: CounterHandler) {}
    func destroyMeter(_ handler: MeterHandler) {}
    func destroyRecorder(_ handler: RecorderHandler) {}
    func destroyTimer(_ handler: TimerHandler) {}
}
