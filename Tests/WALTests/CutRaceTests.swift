import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALIO

/// Cuts racing commits, waits and point reads, each race forced at the point where it used to
/// go wrong (through the debug-only hooks of ``FaultHooks``).
@Suite("Cuts racing commits and reads")
struct CutRaceTests {
    static func payload(_ text: String, _ lsn: Int) -> [UInt8] { Array("\(text) \(lsn)".utf8) }

    /// Opens a WAL with records 1...count committed.
    static func walWith(_ count: Int, in dir: String, payloadSize: Int = 0) throws -> SegmentedWAL {
        let wal = try SegmentedWAL(configuration: testConfiguration(dir))
        for lsn in 1...count {
            try wal.append(.put, payload: payload("old", lsn) + [UInt8](repeating: 0x11, count: payloadSize))
        }
        try wal.sync()
        return wal
    }

    enum Cut: CustomStringConvertible {
        case truncate(after: LSN), reset(to: LSN)
        var description: String {
            switch self {
            case .truncate(let after): "truncate(after: \(after))"
            case .reset(let to): "reset(to: \(to))"
            }
        }
        var error: WALError {
            switch self {
            case .truncate(let after): .truncated(after: after)
            case .reset(let to): .logReset(to: to)
            }
        }
        func apply(to wal: SegmentedWAL) throws {
            switch self {
            case .truncate(let after): try wal.truncate(after: after)
            case .reset(let to): try wal.reset(to: to)
            }
        }
    }

    /// Thread A's commit appends LSN 11; before it waits, thread B cuts the log below it and
    /// commits a record of its own. A must not be told its record is durable: it was never
    /// written, and B's record may now hold its LSN.
    @Test("a commit whose record a cut removed before it was durable fails with the cut's error",
          arguments: [Cut.truncate(after: 10), .reset(to: 10), .reset(to: 11), .reset(to: 30)])
    func commitRacingACut(cut: Cut) throws {
        try withTemporaryDirectory { dir in
            let wal = try Self.walWith(10, in: dir)
            let fired = Locked(false)
            let other = Locked<LSN?>(nil)
            var handlers = FaultHooks.Handlers()
            handlers.commitAppended = { lsn in
                guard lsn == 11, fired.withLock({ (fired: inout Bool) -> Bool in defer { fired = true }; return !fired }) else { return }
                // Thread B, run in the window between A's append and A's wait.
                try! cut.apply(to: wal)
                let b = try! wal.commit(.put, payload: bytes("B"))
                other.withLock { $0 = b }
            }
            let outcome: Result<LSN, WALError> = FaultHooks.shared.with(dir, handlers) {
                Result { () throws(WALError) -> LSN in try wal.commit(.put, payload: bytes("A")) }
            }
            #expect(fired.withLock { $0 })
            switch outcome {
            case .success(let lsn):
                let held = try wal.record(at: lsn)?.payload
                Issue.record("A's commit was acknowledged with LSN \(lsn) after \(cut); the log holds \(held.map { String(decoding: $0, as: UTF8.self) } ?? "nothing") there")
            case .failure(let error):
                #expect(error == cut.error)
            }
            let b = try #require(other.withLock { $0 })
            #expect(try wal.record(at: b)?.payload == bytes("B"))
            try wal.close()
            #expect(try replayAll(dir).allSatisfy { $0.payload != bytes("A") })
        }
    }

    @Test("the async commit fails the same way", arguments: [Cut.truncate(after: 10), .reset(to: 20)])
    func asyncCommitRacingACut(cut: Cut) async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let wal = try Self.walWith(10, in: dir)
            let fired = Locked(false)
            var handlers = FaultHooks.Handlers()
            handlers.commitAppended = { lsn in
                guard lsn == 11, fired.withLock({ (fired: inout Bool) -> Bool in defer { fired = true }; return !fired }) else { return }
                try! cut.apply(to: wal)
                _ = try! wal.commit(.put, payload: bytes("B"))
            }
            FaultHooks.shared.register(dir, handlers)
            defer { FaultHooks.shared.unregister(dir) }
            do {
                let lsn = try await wal.commit(.put, payload: bytes("A"))
                Issue.record("A's async commit was acknowledged with LSN \(lsn) after \(cut)")
            } catch let error as WALError {
                #expect(error == cut.error)
            }
            try wal.close()
        }
    }

    /// `waitUntilDurable(lsn)` knows only the LSN: after a reset at or above it, the record is
    /// gone and no record will take that LSN again, so the wait fails.
    @Test("waiting for an LSN a reset removed fails with logReset")
    func waitBelowAReset() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let wal = try Self.walWith(10, in: dir)
            let lsn = try wal.append(.put, payload: bytes("not durable yet"))
            try wal.reset(to: 20)
            #expect(throws: WALError.logReset(to: 20)) { try wal.waitUntilDurable(lsn) }
            #expect(throws: WALError.logReset(to: 20)) { try wal.waitUntilDurable(5) }
            await #expect(throws: WALError.logReset(to: 20)) { try await wal.durable(lsn) }
            // What the reset left is waited for as usual.
            let next = try wal.append(.put, payload: bytes("new"))
            #expect(next == 21)
            try wal.waitUntilDurable(next)
            try wal.sync()
            // A truncate below the reset's start empties the log again: LSNs above it are new.
            try wal.truncate(after: 3)
            #expect(throws: WALError.truncated(after: 3)) { try wal.waitUntilDurable(3) }
            let four = try wal.append(.put, payload: bytes("four"))
            #expect(four == 4)
            try wal.waitUntilDurable(four)
            try wal.close()
        }
    }

    /// A point read that started before a cut (it read the segment's old bytes) must not leave
    /// its index behind for the reads after the cut.
    @Test("a point read overlapping a cut leaves no stale index")
    func pointReadOverlappingACut() throws {
        try withTemporaryDirectory { dir in
            // About 2 MiB of records: the index scan reads the segment in two windows, the
            // second in the background (read-ahead) — the cut runs there.
            let wal = try Self.walWith(1000, in: dir, payloadSize: 2000)
            let armed = Locked(0)
            let done = Locked(false)
            var handlers = FaultHooks.Handlers()
            handlers.error = { operation, _ in
                // The reader's second window (reads are counted from 1 once armed).
                let fire = armed.withLock { (count: inout Int) -> Bool in
                    guard operation == "pread", count > 0 else { return false }
                    count += 1
                    if count == 3 { count = 0; return true }
                    return false
                }
                guard fire else { return nil }
                try! wal.truncate(after: 100)
                for lsn in 101...1000 { try! wal.append(.put, payload: Self.payload("new", lsn) + [UInt8](repeating: 0x22, count: 3000)) }
                try! wal.sync()
                _ = try! wal.record(at: 150)  // a reader after the cut
                done.withLock { $0 = true }
                return nil
            }
            try FaultHooks.shared.with(dir, handlers) {
                armed.withLock { $0 = 1 }
                _ = try? wal.record(at: 900)  // the reader racing the cut
            }
            #expect(done.withLock { $0 }, "the cut ran inside the racing read")
            for lsn: LSN in [150, 200, 500, 900, 1000] {
                let record = try wal.record(at: lsn)
                #expect(record?.payload.starts(with: Self.payload("new", Int(lsn))) == true, "LSN \(lsn)")
            }
            #expect(try wal.records(from: 101, through: 1000).count == 900)
            try wal.close()
            #expect(try replayAll(dir).count == 1000)
        }
    }
}
