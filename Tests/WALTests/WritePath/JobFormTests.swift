import Logging
import Testing
import WALFormat
@testable import WALIO
@testable import WALSegments

/// The segment writer asks the engine what a job's write will be, and a job may share the
/// device only when the engine says it is durable by itself. Before the write path was redesigned
/// (#22), the pipeline took every `.thisWrite` job for a dsync write, while the engine made it a
/// write linked to an fdatasync under `.linkedFdatasync`: with several flushes in flight such
/// jobs went out beside each other, as docs/ARCHITECTURE.md said they never did.
@Suite("Jobs carry the engine's form")
struct JobFormTests {
    @Test("a job is durable by itself exactly when the engine makes it a dsync write alone",
          .enabled(if: EngineTests.ioUringAvailable, "needs io_uring"),
          arguments: IOUringSyncMethod.allCases)
    func jobForm(method: IOUringSyncMethod) throws {
        try withTemporaryDirectory { dir in
            let engine = try IOUringEngine(syncMethod: method, flushesInFlight: 4)
            defer { engine.shutdown() }
            let file = try SegmentFile.open(path: dir + "/segment", create: true, directIO: .automatic, logger: Logger(label: "test"))
            defer { file.close() }
            let writer = try SegmentWriter(file: file, engine: engine, firstLSN: 1, nextLSN: 1, end: 0, bufferSize: 65536, buffers: 5)
            for _ in 0..<3 {
                _ = try [UInt8](repeating: 7, count: 100).withUnsafeBytes { payload in
                    try Result { () throws(WALError) -> LSN in
                        try writer.append(storedType: RecordType.put.rawValue, tenant: 0, vshard: 0, payload: payload, holdingIORole: false)
                    }.get()
                }
            }
            let job = try #require(writer.takeJob(demand: 3, covered: 0))
            #expect(job.durability == .thisWrite, "nothing unsynced before it")
            #expect(job.form == WriteForm.ioUring(.thisWrite, isEmpty: false, method: method))
            #expect(job.isSelfDurable == (method != .linkedFdatasync),
                    "\(method): \(job.form) is \(job.isSelfDurable ? "" : "not ")durable by itself")
            writer.returnBuffer(of: job)
        }
    }

    @Test("the POSIX engine's jobs are never durable by themselves (pwrite + fdatasync)")
    func posixJobs() throws {
        try withTemporaryDirectory { dir in
            let file = try SegmentFile.open(path: dir + "/segment", create: true, directIO: .automatic, logger: Logger(label: "test"))
            defer { file.close() }
            let writer = try SegmentWriter(file: file, engine: POSIXEngine(), firstLSN: 1, nextLSN: 1, end: 0, bufferSize: 65536)
            _ = try [UInt8](repeating: 7, count: 100).withUnsafeBytes { payload in
                try Result { () throws(WALError) -> LSN in
                    try writer.append(storedType: RecordType.put.rawValue, tenant: 0, vshard: 0, payload: payload, holdingIORole: false)
                }.get()
            }
            let job = try #require(writer.takeJob(demand: 1, covered: 0))
            #expect(job.form == WriteForm(write: .plain, fdatasync: true) && !job.isSelfDurable)
            writer.returnBuffer(of: job)
        }
    }
}
