import Synchronization
import WALFormat

/// The durable LSN as the rest of the process sees it: published under the WAL's lock,
/// mirrored for lock-free readers (tailers check it once per record), and the commit waiters
/// and tailers it releases. Wake-ups are collected under the lock and run after it is released
/// (``takeWakeUps()``), so a woken thread never finds the lock still held by its waker.
final class DurablePublisher {
    /// Wake-ups to run once the lock is released.
    struct WakeUps {
        fileprivate var batches: [CommitWaiters.Released] = []
        fileprivate var wakes: [DurabilityWatchers.Wake] = []

        var isEmpty: Bool { batches.isEmpty && wakes.isEmpty }

        func resume() {
            for batch in batches { batch.resume() }
            for wake in wakes { wake.resume() }
        }
    }

    /// The durable LSN (lock held).
    @exclusivity(unchecked) private(set) var lsn: LSN
    private let mirror: Atomic<LSN>
    /// Commits waiting for their LSN (lock held).
    @exclusivity(unchecked) var waiters = CommitWaiters()
    /// Tailers following the durable LSN (lock held).
    @exclusivity(unchecked) var watchers = DurabilityWatchers()
    @exclusivity(unchecked) private var pending = WakeUps()

    init(durable: LSN) {
        lsn = durable
        mirror = Atomic(durable)
    }

    /// The durable LSN, without the lock.
    var mirrored: LSN { mirror.load(ordering: .acquiring) }

    /// Moves the durable LSN up to `lsn` and releases the waiters and tailers it covers.
    func publish(_ lsn: LSN) {
        guard lsn > self.lsn else { return }
        self.lsn = lsn
        mirror.store(lsn, ordering: .releasing)
        if let batch = waiters.release(upTo: lsn) { pending.batches.append(batch) }
        if !watchers.isEmpty { watchers.release(upTo: lsn, into: &pending.wakes) }
    }

    /// Sets the durable LSN after a cut (which may lower it), then releases as ``publish(_:)``.
    func reset(to lsn: LSN) {
        self.lsn = lsn
        mirror.store(lsn, ordering: .releasing)
        if let batch = waiters.release(upTo: lsn) { pending.batches.append(batch) }
    }

    /// Queues a batch of waiters released with an outcome of the caller's.
    func release(_ batch: CommitWaiters.Released?) {
        if let batch { pending.batches.append(batch) }
    }

    /// Fails every waiter and tailer with `error`.
    func failAll(_ error: WALError) {
        release(waiters.releaseAll(outcome: error))
        watchers.releaseAll(error, into: &pending.wakes)
    }

    /// Wakes every tailer to check where it stands (after a cut).
    func wakeWatchers() {
        watchers.releaseAll(durable: lsn, into: &pending.wakes)
    }

    /// The highest LSN a commit waits for.
    var highestWaited: LSN { waiters.highest }

    /// Wake-ups are due.
    var hasWakeUps: Bool { !pending.isEmpty }

    /// The wake-ups collected so far, to run after the lock is released; nil when there are none.
    func takeWakeUps() -> WakeUps? {
        guard !pending.isEmpty else { return nil }
        defer { pending = WakeUps() }
        return pending
    }
}
