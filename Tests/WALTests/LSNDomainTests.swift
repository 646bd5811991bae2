import Foundation
import Testing
@testable import WAL
@testable import WALSegments

/// LSNs at the top of their range (``LSNDomain``): refused at the API, refused on disk with an
/// error naming the file, and never a trap.
@Suite("LSNs at the edge of their domain")
struct LSNDomainTests {
    @Test("cuts to an LSN that leaves no room for the next record are refused")
    func cutsOutsideTheDomain() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            for lsn in [LSN.max, LSN.max - 2, LSN(Int64.max), LSNDomain.last] {
                #expect(throws: WALError.self) { try wal.reset(to: lsn) }
                #expect(throws: WALError.self) { try wal.truncate(after: lsn) }
            }
            for lsn in [LSN(0), LSNDomain.last + 1, LSN.max] {
                guard case .invalidArgument? = thrownError({ () throws(WALError) in try wal.record(at: lsn) }) else {
                    Issue.record("record(at: \(lsn)) must be refused"); continue
                }
            }
            #expect(try wal.records(from: 0, through: .max).isEmpty)
            try wal.close()
        }
    }

    /// The last LSN is usable; the append after it is refused, before and after a reopen.
    @Test("the log's last LSN is written, read and replayed; the append after it is refused")
    func theLastLSN() throws {
        try withTemporaryDirectory { dir in
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir))
                try wal.commit(.put, payload: bytes("one"))
                try wal.reset(to: LSNDomain.last - 2)
                #expect(try wal.commit(.put, payload: bytes("second to last")) == LSNDomain.last - 1)
                #expect(try wal.commit(.put, payload: bytes("last")) == LSNDomain.last)
                guard case .invalidArgument? = thrownError({ () throws(WALError) in try wal.commit(.put, payload: bytes("beyond")) }) else {
                    Issue.record("an append past the last LSN must be refused"); return
                }
                #expect(try wal.record(at: LSNDomain.last)?.payload == bytes("last"))
                try wal.close()
            }
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == LSNDomain.last + 1)
            #expect(try wal.record(at: LSNDomain.last)?.payload == bytes("last"))
            #expect(try wal.records(from: LSNDomain.last - 10, through: .max).map(\.lsn) == [LSNDomain.last - 1, LSNDomain.last])
            #expect(throws: WALError.self) { try wal.append(.put, payload: bytes("beyond")) }
            try wal.truncate(after: LSNDomain.last - 1)
            #expect(try wal.commit(.put, payload: bytes("again")) == LSNDomain.last)
            try wal.close()
            #expect(try replayAll(dir).map(\.lsn) == [LSNDomain.last - 1, LSNDomain.last])
        }
    }

    /// The issue's trap: reset near the top, append, reopen, point read.
    @Test func pointReadNearTheTop() throws {
        try withTemporaryDirectory { dir in
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir))
                try wal.reset(to: LSNDomain.last - 100)
                for _ in 0..<5 { try wal.append(.put, payload: bytes("x")) }
                try wal.close()
            }
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(try wal.record(at: LSNDomain.last - 97)?.payload == bytes("x"))
            try wal.close()
        }
    }

    /// A segment named outside the domain (a hostile or damaged directory) is corruption naming
    /// the file, for replay, verify and open — never a trap at `due + 1`.
    @Test("a segment named near UInt64.max is refused with an error naming it",
          arguments: [LSN.max, LSN.max - 1, LSNDomain.last + 1, 0])
    func segmentNameOutsideTheDomain(first: LSN) throws {
        try withTemporaryDirectory { dir in
            let name = SegmentName.make(firstLSN: first)
            try writeFile(dir + "/" + name, SeedPaddingTests.record(first, bytes("hostile")) + SeedPaddingTests.record(first &+ 1, bytes("next")))
            guard case .corruption(let segment, _, _, _)? = replayUntilError(dir).error else {
                Issue.record("replay must refuse \(name)"); return
            }
            #expect(segment == name)
            #expect(!SegmentedWAL.verify(directory: dir).isClean)
            guard case .corruption(let opened, _, _, _)? = thrownError({ () throws(WALError) in try SegmentedWAL(configuration: testConfiguration(dir)) }) else {
                Issue.record("open must refuse \(name)"); return
            }
            #expect(opened == name)
        }
    }
}

/// The error `body` throws, or nil.
func thrownError<T>(_ body: () throws(WALError) -> T) -> WALError? {
    do { _ = try body(); return nil } catch { return error }
}
