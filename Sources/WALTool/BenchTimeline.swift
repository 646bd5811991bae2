import Foundation

/// One commit as `wal bench --timeline` keeps it: when it returned (nanoseconds since the run
/// began) and how long it took (µs).
struct TimelineSample: Sendable {
    var end: UInt64
    var micros: UInt64
}

/// One line of the `--timeline` file (JSON lines, in order of `at`): either an interval of the
/// run with the latencies of the commits that returned in it, or the moment a segment rollover
/// finished (`wal_rollovers_total` counted it).
struct TimelineEntry: Codable, Equatable {
    enum Kind: String, Codable { case interval, rollover }

    var kind: Kind
    /// Seconds since the run began: where the interval starts, or when the rollover finished.
    var at: Double
    /// An interval's end (seconds since the run began).
    var end: Double?
    /// Commits that returned within the interval.
    var commits: Int?
    /// The latency percentiles (µs) of those commits; absent when none returned.
    var p50: UInt64?
    var p99: UInt64?
    var max: UInt64?
}

enum BenchTimeline {
    /// Cuts `elapsed` nanoseconds into intervals of `interval` nanoseconds (the last one may be
    /// shorter), puts each sample in the interval in which its commit returned and reports the
    /// exact (nearest-rank) p50, p99 and max of each, with the rollovers (nanoseconds since the
    /// run began) in between. An interval in which no commit returned (a stall) is reported
    /// with 0 commits.
    static func entries(samples: [TimelineSample], rollovers: [UInt64], interval: UInt64, elapsed: UInt64) -> [TimelineEntry] {
        precondition(interval > 0)
        let count = max(1, Int((elapsed + interval - 1) / interval))
        var buckets = [[UInt64]](repeating: [], count: count)
        for sample in samples { buckets[min(Int(sample.end / interval), count - 1)].append(sample.micros) }
        var entries: [TimelineEntry] = []
        entries.reserveCapacity(count + rollovers.count)
        var pending = rollovers.sorted()[...]
        for (index, latencies) in buckets.enumerated() {
            let start = UInt64(index) * interval
            while let next = pending.first, next < start {
                entries.append(TimelineEntry(kind: .rollover, at: seconds(next)))
                pending.removeFirst()
            }
            var entry = TimelineEntry(kind: .interval, at: seconds(start), end: seconds(Swift.max(start, Swift.min(start + interval, elapsed))),
                                      commits: latencies.count)
            if !latencies.isEmpty {
                let sorted = latencies.sorted()
                entry.p50 = nearestRank(sorted, 50)
                entry.p99 = nearestRank(sorted, 99)
                entry.max = sorted.last
            }
            entries.append(entry)
        }
        entries += pending.map { TimelineEntry(kind: .rollover, at: seconds($0)) }
        return entries
    }

    /// The JSON lines of `entries`, each ending with a newline.
    static func jsonLines(_ entries: [TimelineEntry]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return entries.map { String(decoding: (try? encoder.encode($0)) ?? Data(), as: UTF8.self) + "\n" }.joined()
    }

    static func nearestRank(_ sorted: [UInt64], _ percentile: Double) -> UInt64 {
        let rank = Int((percentile / 100 * Double(sorted.count)).rounded(.up))
        return sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1]
    }

    /// Nanoseconds as seconds, to the microsecond.
    private static func seconds(_ nanoseconds: UInt64) -> Double {
        Double(nanoseconds / 1000) / 1e6
    }
}
