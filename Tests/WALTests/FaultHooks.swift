import Foundation
import Synchronization
@testable import WAL
@testable import WALIO

/// Routes the WAL's process-wide test hooks (``TestHooks``: faults, short writes and reads,
/// io_uring completions, the observer of file changes; debug builds only) to the test that
/// owns a directory, so that suites running in parallel never see each
/// other's faults. A test registers for its temporary directory and unregisters when done.
final class FaultHooks: Sendable {
    struct Handlers: Sendable {
        /// Fail a system call: return an errno for (operation, path), or nil to let it run.
        var error: (@Sendable (String, String) -> Int32?)?
        /// Bytes a pwrite of `count` may write at once (fewer = a short write).
        var shortWrite: (@Sendable (String, Int) -> Int)?
        /// Bytes a pread of `count` may read at once (fewer = a short read, 0 = nothing read).
        var shortRead: (@Sendable (String, Int) -> Int)?
        /// Replace an io_uring completion's result for (operation, path, result).
        var completion: (@Sendable (String, String, Int32) -> Int32)?
        /// Told of every change to a file or directory.
        var observer: (@Sendable (SyscallEvent) -> Void)?
        /// Runs in a committing thread between its append and its wait, with the record's LSN.
        var commitAppended: (@Sendable (UInt64) -> Void)?
        /// Bytes a segment grows after a failed rollover before the next attempt (nil: 64 KiB).
        var rolloverRetryDistance: Int64?
    }

    static let shared = FaultHooks()
    private let routes = Mutex<[String: Handlers]>([:])

    private init() {
        TestHooks.faultInjector = { operation, path in FaultHooks.shared.handlers(for: path)?.error?(operation, path) }
        TestHooks.shortWriteInjector = { path, count in FaultHooks.shared.handlers(for: path)?.shortWrite?(path, count) ?? count }
        TestHooks.shortReadInjector = { path, count in FaultHooks.shared.handlers(for: path)?.shortRead?(path, count) ?? count }
        TestHooks.completionInjector = { operation, path, result in
            FaultHooks.shared.handlers(for: path)?.completion?(operation, path, result) ?? result
        }
        TestHooks.rolloverRetryDistanceHook = { directory in FaultHooks.shared.handlers(for: directory)?.rolloverRetryDistance }
        TestHooks.commitAppendedHook = { directory, lsn in FaultHooks.shared.handlers(for: directory)?.commitAppended?(lsn) }
        TestHooks.observer = { event in
            let path: String
            switch event {
            case .create(let p), .write(let p, _, _), .durableWriteIssued(let p, _, _),
                 .durableWriteCompleted(let p, _, _), .truncate(let p, _), .allocate(let p, _), .sync(let p),
                 .syncStarted(let p, _), .syncFinished(let p, _),
                 .unlink(let p), .syncDirectory(let p):
                path = p
            case .rename(let from, _):
                path = from
            }
            FaultHooks.shared.handlers(for: path)?.observer?(event)
        }
    }

    /// Runs `body` with `handlers` applied to every path under `directory` (and to the
    /// directory itself).
    func with<T>(_ directory: String, _ handlers: Handlers, _ body: () throws -> T) rethrows -> T {
        routes.withLock { $0[directory] = handlers }
        defer { _ = routes.withLock { $0.removeValue(forKey: directory) } }
        return try body()
    }

    /// Applies `handlers` to `directory` until ``unregister(_:)`` (for async test bodies).
    func register(_ directory: String, _ handlers: Handlers) {
        routes.withLock { $0[directory] = handlers }
    }

    func unregister(_ directory: String) {
        _ = routes.withLock { $0.removeValue(forKey: directory) }
    }

    private func handlers(for path: String) -> Handlers? {
        routes.withLock { routes in
            if routes.isEmpty { return nil }
            for (directory, handlers) in routes where path == directory || path.hasPrefix(directory + "/") {
                return handlers
            }
            return nil
        }
    }
}
