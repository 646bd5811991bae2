import Glibc
import Synchronization

/// A pthread mutex with condition variables: what the commit path needs to wait for a flush
/// while letting others append (Swift's `Mutex` has no condition variables).
///
/// Unlike `Mutex`, it does not own the state it protects: callers keep that state in class
/// properties, read afresh after every wait, and never hold an `inout` access across a wait.
package final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    #if DEBUG
    /// The holder's thread (debug builds only), for ``assertHeld(file:line:)``.
    private let owner = Atomic<UInt>(0)
    private static var currentThread: UInt { UInt(pthread_self()) }
    #endif

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func lock() {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
        markHeld()
    }

    package func unlock() {
        markReleased()
        let rc = pthread_mutex_unlock(mutex)
        precondition(rc == 0, "pthread_mutex_unlock failed: \(rc)")
    }

    /// Traps in debug builds unless the calling thread holds the lock: the check behind every
    /// "lock held" in a comment. Free in release builds.
    package func assertHeld(file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        assert(owner.load(ordering: .relaxed) == Self.currentThread, "the lock must be held here", file: file, line: line)
        #endif
    }

    private func markHeld() {
        #if DEBUG
        owner.store(Self.currentThread, ordering: .relaxed)
        #endif
    }

    private func markReleased() {
        #if DEBUG
        assertHeld()
        owner.store(0, ordering: .relaxed)
        #endif
    }

    /// A condition variable waited on with this lock held.
    package final class Condition: @unchecked Sendable {
        private let condition: UnsafeMutablePointer<pthread_cond_t>
        private let lock: ConditionLock

        package init(_ lock: ConditionLock) {
            self.lock = lock
            condition = .allocate(capacity: 1)
            condition.initialize(to: pthread_cond_t())
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            let rc = pthread_cond_init(condition, &attributes)
            pthread_condattr_destroy(&attributes)
            precondition(rc == 0, "pthread_cond_init failed: \(rc)")
        }

        deinit {
            pthread_cond_destroy(condition)
            condition.deallocate()
        }

        /// Releases the lock, sleeps until signalled (or spuriously), and takes the lock again.
        package func wait() {
            lock.markReleased()
            let rc = pthread_cond_wait(condition, lock.mutex)
            precondition(rc == 0, "pthread_cond_wait failed: \(rc)")
            lock.markHeld()
        }

        /// As ``wait()``, but returns after `nanoseconds` at the latest.
        package func wait(nanoseconds: Int64) {
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let total = Int64(deadline.tv_nsec) + nanoseconds
            deadline.tv_sec += Int(total / 1_000_000_000)
            deadline.tv_nsec = Int(total % 1_000_000_000)
            lock.markReleased()
            _ = pthread_cond_timedwait(condition, lock.mutex, &deadline)
            lock.markHeld()
        }

        package func signal() { pthread_cond_signal(condition) }
        package func broadcast() { pthread_cond_broadcast(condition) }
    }
}
