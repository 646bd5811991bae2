import CLiburing
import Glibc
import Synchronization

/// A joinable pthread running one closure: the WAL's flusher. A plain thread rather than a
/// Dispatch queue or a task, because it blocks in system calls and condition waits by design
/// and must never occupy a cooperative thread.
package final class BackgroundThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let kernelID = Mutex<pid_t?>(nil)

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes show in `ps`/`top`).
    package init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box({ [self] in
            self.kernelID.withLock { $0 = CLiburing_gettid() }
            body()
        })).toOpaque()
        let rc = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        _ = CLiburing_pthread_setname(thread, String(name.prefix(15)))
    }

    /// The kernel's thread id (as in /proc/self/task/ID), once the thread has started.
    package var threadID: pid_t? { kernelID.withLock { $0 } }

    /// Waits for the thread to finish.
    package func join() {
        _ = pthread_join(thread, nil)
    }

    /// Whether the caller is this thread.
    package var isCurrent: Bool { pthread_equal(pthread_self(), thread) != 0 }
}
