import Foundation
import Logging
import ServiceLifecycle
import Testing
import WAL
import WALServiceLifecycle

/// `WALService` inside a real `ServiceGroup`: shut down by a real SIGTERM sent to this
/// process, and ended by a real write failure (ENOSPC on a small tmpfs).
@Suite("WALService")
struct WALServiceTests {
    static let quietLogger = Logger(label: "wal-service-test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test("On SIGTERM the service closes the WAL after the services behind it; every appended record is durable when run returns")
    func gracefulShutdownOnSignal() async throws {
        try await withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: WALConfiguration(directory: directory))
            let appender = Appender(wal: wal)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: WALService(wal: wal)), .init(service: appender)],
                gracefulShutdownSignals: [.sigterm],
                logger: Self.quietLogger))
            let running = Task { try await group.run() }

            // The group traps its signals before it starts any service: once the appender runs,
            // SIGTERM reaches the group instead of ending this process.
            await appender.started.wait()
            var appended: [LSN] = []
            for index in 0..<100 { appended.append(try wal.append(.put, payload: Array("record \(index)".utf8))) }
            // Appended, not committed: nothing asks for a flush, so none of it is durable yet
            // (small records stay in the 2 MiB ring buffer).
            #expect(wal.durableLSN < appended.last!)

            #expect(kill(getpid(), SIGTERM) == 0)
            try await withDeadline(seconds: 30) { try await running.value }

            // The appender (listed after the WAL) shut down first and could still append its
            // last record; then the WAL service closed the log, and only then did run return.
            let drained = try #require(appender.drainedLSN.withLock { $0 })
            #expect(drained == appended.last! + 1)
            #expect(wal.durableLSN == drained)
            #expect(throws: WALError.closed) { try wal.append(.put, payload: [1]) }

            // The directory lock is released and every record replays.
            let reopened = try SegmentedWAL(configuration: WALConfiguration(directory: directory))
            #expect(reopened.nextLSN == drained + 1)
            try reopened.close()
            let replayed = try replayAll(directory)
            #expect(replayed.map(\.lsn) == Array(1...drained))
            #expect(replayed.first?.payload == Array("record 0".utf8))
            #expect(replayed.last?.payload == Array("drained".utf8))
        }
    }

    /// ENOSPC needs a small file system: a 1 MiB tmpfs, mounted here (root only).
    @Test("A WAL whose write fails ends the service with WALError.failed, and the group's run throws it",
          .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func failureEndsTheService() async throws {
        try await withTemporaryDirectory { root in
            let mountPoint = root + "/mnt"
            #expect(mkdir(mountPoint, 0o700) == 0)
            guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=1m") == 0 else {
                let code = errno
                withKnownIssue("cannot mount a tmpfs here (errno \(code)); the failure path is not exercised") {
                    Issue.record("mount failed")
                }
                return
            }
            defer { umount(mountPoint) }  // fails while the WAL is open: hence the close below

            var configuration = WALConfiguration(directory: mountPoint + "/wal")
            configuration.preallocation = .none  // fail in the write path, not in the background
            let wal = try SegmentedWAL(configuration: configuration)
            let appender = Appender(wal: wal)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: WALService(wal: wal)), .init(service: appender)],
                logger: Self.quietLogger))
            let running = Task { try await group.run() }
            await appender.started.wait()

            // Commit 8 KiB records until the file system is full (2 MiB of them is twice its size).
            var commitError: WALError?
            for _ in 0..<256 {
                do throws(WALError) {
                    try await wal.commit(.put, payload: [UInt8](repeating: 0xAB, count: 8 << 10))
                } catch {
                    commitError = error
                    break
                }
            }
            let failure = try #require(commitError, "the tmpfs never filled up")
            #expect(failure.errno == ENOSPC, "\(failure)")

            let outcome: Result<Void, any Error>
            do {
                outcome = try await withDeadline(seconds: 30) { await running.result }
            } catch {
                try? wal.close()  // so that the tmpfs unmounts
                throw error
            }
            guard case .failure(let groupError) = outcome, case .failed(let cause)? = groupError as? WALError else {
                Issue.record("the group ended with \(outcome), not WALError.failed")
                return
            }
            #expect(cause.errno == ENOSPC, "\(cause)")
            // The service closed the failed WAL: the directory can be reopened (by a restart).
            #expect(throws: WALError.closed) { try wal.append(.put, payload: [1]) }
        }
    }
}

/// A service that appends to the WAL: it reports when it runs, and on graceful shutdown
/// appends one last record ("drained"), as a server finishing its requests would.
final class Appender: Service, Sendable {
    let wal: SegmentedWAL
    let started = Signal()
    let drainedLSN = Locked<LSN?>(nil)

    init(wal: SegmentedWAL) { self.wal = wal }

    func run() async throws {
        started.fire()
        try await gracefulShutdown()
        let lsn = try wal.append(.put, payload: Array("drained".utf8))
        drainedLSN.withLock { $0 = lsn }
    }
}
