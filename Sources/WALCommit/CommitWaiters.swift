import Dispatch
import WALFormat

/// The commits waiting for their records to become durable, each for its own LSN.
///
/// A blocking waiter sleeps on a semaphore of its own, so a flush wakes exactly the threads it
/// made durable, and a woken thread returns without taking the WAL's lock again; an async
/// waiter is a continuation. Either is resumed once: when its LSN is durable, or with the error
/// that ended the wait. Not thread-safe: lives under the WAL's lock.
struct CommitWaiters {
    /// One blocked thread. `outcome` and `batch` are written before the semaphore is signalled
    /// and read after the wait returns, so the semaphore orders them.
    final class ThreadWaiter: @unchecked Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        var outcome: WALError?
        fileprivate var batch: Released?
        fileprivate var index = 0

        /// Blocks until resumed, then passes the wake-up on (see ``Released``) and returns the outcome.
        func wait() -> WALError? {
            semaphore.wait()
            batch?.wakeChildren(of: index)
            batch = nil
            return outcome
        }
    }

    private enum Wake {
        case thread(ThreadWaiter)
        case task(CheckedContinuation<Void, any Error>)
    }

    private struct Entry {
        let lsn: LSN
        let wake: Wake
    }

    /// Waiters released together with one outcome. Waking a thread costs the waker several
    /// microseconds (more in a VM); a flush that releases 60 commits would spend hundreds of
    /// microseconds waking them before it could start the next flush. So the releaser wakes one
    /// thread, and every woken thread wakes two more (a binary tree): the flusher pays for one
    /// wake-up and the others proceed in parallel on whatever cores are free.
    final class Released: @unchecked Sendable {
        private let threads: [ThreadWaiter]
        private let tasks: [CheckedContinuation<Void, any Error>]
        private let outcome: WALError?

        fileprivate init(threads: [ThreadWaiter], tasks: [CheckedContinuation<Void, any Error>], outcome: WALError?) {
            self.threads = threads
            self.tasks = tasks
            self.outcome = outcome
        }

        var isEmpty: Bool { threads.isEmpty && tasks.isEmpty }

        /// Resumes the tasks and starts the wake-up tree. Call without holding the WAL's lock.
        func resume() {
            for task in tasks {
                if let outcome { task.resume(throwing: outcome) } else { task.resume() }
            }
            wake(0)
        }

        fileprivate func wakeChildren(of index: Int) {
            wake(2 * index + 1)
            wake(2 * index + 2)
        }

        private func wake(_ index: Int) {
            guard index < threads.count else { return }
            let waiter = threads[index]
            waiter.outcome = outcome
            waiter.batch = self
            waiter.index = index
            waiter.semaphore.signal()
        }
    }

    private var entries: [Entry] = []

    /// The highest LSN any waiter waits for; 0 when none waits.
    private(set) var highest: LSN = 0

    mutating func add(lsn: LSN, thread: ThreadWaiter) {
        entries.append(Entry(lsn: lsn, wake: .thread(thread)))
        highest = max(highest, lsn)
    }

    mutating func add(lsn: LSN, task: CheckedContinuation<Void, any Error>) {
        entries.append(Entry(lsn: lsn, wake: .task(task)))
        highest = max(highest, lsn)
    }

    /// Removes the waiters whose LSN is at most `durable`, to be resumed successfully.
    mutating func release(upTo durable: LSN) -> Released? {
        guard !entries.isEmpty else { return nil }
        return release(outcome: nil) { $0 <= durable }
    }

    /// Removes the waiters whose LSN is above `lsn`, to be resumed with `outcome` (a cut
    /// removed their records before they were durable).
    mutating func release(above lsn: LSN, outcome: WALError) -> Released? {
        guard highest > lsn else { return nil }
        return release(outcome: outcome) { $0 > lsn }
    }

    /// Removes the waiters whose LSN `matches`, to be resumed with `outcome`.
    private mutating func release(outcome: WALError?, where matches: (LSN) -> Bool) -> Released? {
        var threads: [ThreadWaiter] = []
        var tasks: [CheckedContinuation<Void, any Error>] = []
        var kept: [Entry] = []
        var newHighest: LSN = 0
        for entry in entries {
            if matches(entry.lsn) {
                switch entry.wake {
                case .thread(let waiter): threads.append(waiter)
                case .task(let task): tasks.append(task)
                }
            } else {
                kept.append(entry)
                newHighest = max(newHighest, entry.lsn)
            }
        }
        entries = kept
        highest = newHighest
        let released = Released(threads: threads, tasks: tasks, outcome: outcome)
        return released.isEmpty ? nil : released
    }

    /// Removes every waiter, to be resumed with `outcome` (the WAL failed or closed).
    mutating func releaseAll(outcome: WALError) -> Released? {
        defer { entries = []; highest = 0 }
        var threads: [ThreadWaiter] = []
        var tasks: [CheckedContinuation<Void, any Error>] = []
        for entry in entries {
            switch entry.wake {
            case .thread(let waiter): threads.append(waiter)
            case .task(let task): tasks.append(task)
            }
        }
        let released = Released(threads: threads, tasks: tasks, outcome: outcome)
        return released.isEmpty ? nil : released
    }
}
