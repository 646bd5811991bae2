import CoreMetrics
import Synchronization

/// The benchmark's metrics backend: sums the WAL's counters (fdatasyncs, flushes) so the
/// report can show how many commits each fdatasync carried. Bootstrapped by the tool — an
/// application — never by the library.
final class BenchCounters: MetricsFactory, @unchecked Sendable {
    private let totals = Mutex<[String: Int64]>([:])

    private final class Handler: CounterHandler, @unchecked Sendable {
        let label: String
        let owner: BenchCounters
        init(label: String, owner: BenchCounters) { self.label = label; self.owner = owner }
        func increment(by amount: Int64) { owner.totals.withLock { $0[label, default: 0] += amount } }
        func reset() { owner.totals.withLock { $0[label] = 0 } }
    }

    static func bootstrap() -> BenchCounters {
        let counters = BenchCounters()
        MetricsSystem.bootstrap(counters)
        return counters
    }

    func value(_ label: String) -> Int64 { totals.withLock { $0[label] ?? 0 } }

    func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        Handler(label: label, owner: self)
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
