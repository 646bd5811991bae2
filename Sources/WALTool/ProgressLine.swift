import Dispatch
import Glibc
import Synchronization

/// The live progress line `wal bench` draws on a terminal (standard error, once a second):
/// elapsed time, records so far and the rate over the last second. Never drawn when the
/// output is not a TTY.
final class ProgressLine {
    private let timer: DispatchSourceTimer

    init(start: UInt64, counters: BenchCounters) {
        let last = Last(nanoseconds: start)
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "wal-bench.progress"))
        timer.schedule(deadline: .now() + 1, repeating: 1)
        timer.setEventHandler {
            let now = monotonicNanoseconds()
            let records = counters.value("wal_records_total")
            let (then, before) = last.swap(now, records)
            let rate = Double(records - before) / (Double(now - then) / 1e9)
            Self.draw("\r\(format(Double(now - start) / 1e9, 0)) s  \(records) records  \(format(rate, 0)) records/s   ")
        }
        timer.resume()
    }

    /// Stops drawing and clears the line.
    func stop() {
        timer.cancel()
        Self.draw("\r\u{1B}[K")
    }

    private static func draw(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// The previous sample (time, records), swapped for the current one each second.
    private final class Last: Sendable {
        private let sample: Mutex<(UInt64, Int64)>
        init(nanoseconds: UInt64) { sample = Mutex((nanoseconds, 0)) }
        func swap(_ nanoseconds: UInt64, _ records: Int64) -> (UInt64, Int64) {
            sample.withLock { previous in
                defer { previous = (nanoseconds, records) }
                return previous
            }
        }
    }
}
