/// Fault injection and observation where the WAL meets the kernel, for tests.
///
/// Compiled only into debug builds: Package.swift defines `WAL_TEST_HOOKS` for the debug
/// configuration (as swift-system does with `ENABLE_MOCKING`), so a release build has neither
/// the hooks nor a check for them on its I/O path. Tests route them per directory
/// (`Tests/WALTests/FaultHooks.swift`).
package enum TestHooks {
    #if WAL_TEST_HOOKS
    /// Consulted before each system call; an errno makes the call fail with it instead of running.
    nonisolated(unsafe) static var faultInjector: (@Sendable (_ operation: String, _ path: String) -> Int32?)?
    /// How many of the bytes a pwrite may write this time (fewer: a short write).
    nonisolated(unsafe) static var shortWriteInjector: (@Sendable (_ path: String, _ count: Int) -> Int)?
    /// How many of the bytes a pread may read this time (fewer: a short read; 0: nothing).
    nonisolated(unsafe) static var shortReadInjector: (@Sendable (_ path: String, _ count: Int) -> Int)?
    /// Sees each io_uring completion's result (operation "write" or "fdatasync") and returns
    /// the result the engine acts on.
    nonisolated(unsafe) static var completionInjector: (@Sendable (_ operation: String, _ path: String, _ result: Int32) -> Int32)?
    /// Told of every change to a file or directory, after it succeeded (the crash-state model
    /// rebuilds what a crash could leave from these).
    nonisolated(unsafe) static var observer: (@Sendable (SyscallEvent) -> Void)?
    #endif

    /// The errno to fail `operation` on `path` with, if a test injects one.
    @inline(__always)
    static func fault(_ operation: String, _ path: String) -> Int32? {
        #if WAL_TEST_HOOKS
        return faultInjector?(operation, path)
        #else
        return nil
        #endif
    }

    /// How many of `count` bytes a pwrite may write now.
    @inline(__always)
    static func writeLimit(_ path: String, _ count: Int) -> Int {
        #if WAL_TEST_HOOKS
        return shortWriteInjector?(path, count) ?? count
        #else
        return count
        #endif
    }

    /// How many of `count` bytes a pread may read now (0: the read returns nothing).
    @inline(__always)
    static func readLimit(_ path: String, _ count: Int) -> Int {
        #if WAL_TEST_HOOKS
        return shortReadInjector.map { min(count, max(0, $0(path, count))) } ?? count
        #else
        return count
        #endif
    }

    /// The result an io_uring completion is taken to have.
    @inline(__always)
    static func completion(_ operation: String, _ path: String, _ result: Int32) -> Int32 {
        #if WAL_TEST_HOOKS
        return completionInjector?(operation, path, result) ?? result
        #else
        return result
        #endif
    }

    #if WAL_TEST_HOOKS
    /// Called by a commit between its append and its wait for durability, with the WAL's
    /// directory and the record's LSN: the window a concurrent cut can fall in.
    nonisolated(unsafe) static var commitAppendedHook: (@Sendable (_ directory: String, _ lsn: UInt64) -> Void)?
    #endif

    #if WAL_TEST_HOOKS
    /// Where a new writer's flight ids start (to test what happens at a counter's wrap).
    nonisolated(unsafe) static var firstFlightIDOverride: Int?
    #endif

    /// The id before a new writer's first flight: 0, or what a test set.
    @inline(__always)
    package static var firstFlightID: Int {
        #if WAL_TEST_HOOKS
        return firstFlightIDOverride ?? 0
        #else
        return 0
        #endif
    }

    #if WAL_TEST_HOOKS
    /// How far a segment of the directory grows after a failed rollover before the next
    /// attempt (nil: the default), so that a test sees several failed rollovers in a short
    /// workload.
    nonisolated(unsafe) static var rolloverRetryDistanceHook: (@Sendable (_ directory: String) -> Int64?)?
    #endif

    /// The retry distance a test set for `directory`, if any.
    @inline(__always)
    package static func rolloverRetryDistance(_ directory: String) -> Int64? {
        #if WAL_TEST_HOOKS
        return rolloverRetryDistanceHook?(directory)
        #else
        return nil
        #endif
    }

    /// Lets a test act in the window between a commit's append and its wait.
    @inline(__always)
    package static func commitAppended(_ directory: String, _ lsn: UInt64) {
        #if WAL_TEST_HOOKS
        commitAppendedHook?(directory, lsn)
        #endif
    }

    /// Whether anything observes file changes (so that an event is worth building).
    @inline(__always)
    static var isObserving: Bool {
        #if WAL_TEST_HOOKS
        return observer != nil
        #else
        return false
        #endif
    }

    /// Reports a change to a file or directory; the event is built only when observed.
    @inline(__always)
    static func observe(_ event: @autoclosure () -> SyscallEvent) {
        #if WAL_TEST_HOOKS
        observer?(event())
        #endif
    }
}
