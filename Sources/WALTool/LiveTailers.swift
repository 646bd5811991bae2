import Dispatch
import Synchronization
import WAL

/// `wal bench --tailers N`: N live tailers following the log from where the benchmark starts,
/// each counting the records it receives; they end when the WAL closes.
final class LiveTailers: Sendable {
    private let outcomes = Mutex<[Result<Int, WALError>]>([])
    private let done = DispatchGroup()

    init(wal: SegmentedWAL, count: Int) {
        let first = wal.nextLSN
        for _ in 0..<count {
            done.enter()
            Task.detached { [self] in
                var received = 0
                do throws(WALError) {
                    var iterator = wal.records(from: first, follow: true).makeAsyncIterator()
                    while try await iterator.next() != nil { received += 1 }
                    outcomes.withLock { $0.append(.success(received)) }
                } catch {
                    outcomes.withLock { $0.append(.failure(error)) }
                }
                done.leave()
            }
        }
    }

    /// Waits for every tailer to end (after the WAL closed) and returns what each received.
    func results() -> [Result<Int, WALError>] {
        done.wait()
        return outcomes.withLock { $0 }
    }
}
