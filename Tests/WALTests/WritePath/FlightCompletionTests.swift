import Glibc
import Testing
@testable import WALIO

/// ``FlightCompletion``: the io_uring completion table, row by row — each row a request and
/// the completions the kernel reports for it, in order, with the step expected after each.
@Suite("The completion table")
struct FlightCompletionTests {
    enum Completion: CustomStringConvertible {
        case write(Int32)
        case sync(Int32)
        var description: String {
            switch self {
            case .write(let result): "write \(result)"
            case .sync(let result): "fdatasync \(result)"
            }
        }
    }

    typealias Row = (note: String, length: Int, fdatasync: Bool, completions: [Completion], steps: [FlightCompletion.Step])

    static let rows: [Row] = [
        ("a write durable by itself", 8192, false, [.write(8192)], [.writeDone(accepted: 8192, syncDone: false)]),
        ("a write and its fdatasync", 8192, true, [.write(8192), .sync(0)],
         [.writeDone(accepted: 8192, syncDone: false), .syncDone]),
        ("the fdatasync reaped before its write", 8192, true, [.sync(0), .write(8192)],
         [.pending, .writeDone(accepted: 8192, syncDone: true)]),
        ("a short write breaks the link: the rest is resubmitted with its fdatasync", 8192, true,
         [.write(4096), .write(4096), .sync(0)],
         [.resubmit(accepted: 4096), .writeDone(accepted: 4096, syncDone: false), .syncDone]),
        ("a short write whose cancelled fdatasync is reaped first", 8192, true,
         [.sync(-ECANCELED), .write(4096), .write(4096), .sync(0)],
         [.pending, .resubmit(accepted: 4096), .writeDone(accepted: 4096, syncDone: false), .syncDone]),
        ("an interrupted write is resubmitted whole", 4096, false, [.write(-EINTR), .write(4096)],
         [.resubmit(accepted: 0), .writeDone(accepted: 4096, syncDone: false)]),
        ("EAGAIN likewise", 4096, true, [.write(-EAGAIN), .write(4096), .sync(0)],
         [.resubmit(accepted: 0), .writeDone(accepted: 4096, syncDone: false), .syncDone]),
        ("a failed write", 4096, true, [.write(-EIO)], [.failed(operation: "write", errno: EIO)]),
        ("a write that makes no progress", 4096, false, [.write(0)], [.failed(operation: "write", errno: EIO)]),
        ("ENOSPC", 4096, false, [.write(-ENOSPC)], [.failed(operation: "write", errno: ENOSPC)]),
        ("a failed fdatasync", 4096, true, [.write(4096), .sync(-EIO)],
         [.writeDone(accepted: 4096, syncDone: false), .failed(operation: "fdatasync", errno: EIO)]),
        ("an fdatasync cancelled after its write completed in full: nothing vouches for the data", 4096, true,
         [.write(4096), .sync(-ECANCELED)],
         [.writeDone(accepted: 4096, syncDone: false), .failed(operation: "fdatasync", errno: ECANCELED)]),
        ("an fdatasync cancelled, then the write completes in full", 4096, true, [.sync(-ECANCELED), .write(4096)],
         [.pending, .failed(operation: "fdatasync", errno: ECANCELED)]),
        ("a failed fdatasync reaped before its write", 4096, true, [.sync(-EIO)], [.failed(operation: "fdatasync", errno: EIO)]),
        ("an fdatasync alone", 0, true, [.sync(0)], [.syncDone]),
    ]

    @Test("each row's steps", arguments: rows.indices)
    func row(_ index: Int) {
        let row = Self.rows[index]
        var machine = FlightCompletion(length: row.length, fdatasync: row.fdatasync)
        var steps: [FlightCompletion.Step] = []
        for completion in row.completions {
            switch completion {
            case .write(let result): steps.append(machine.writeCompleted(result))
            case .sync(let result): steps.append(machine.syncCompleted(result))
            }
        }
        #expect(steps == row.steps, "\(row.note): \(row.completions)")
    }

    @Test("each resubmission has a new generation, so the old submission's completions are told apart")
    func generations() {
        var machine = FlightCompletion(length: 12288, fdatasync: true)
        #expect(machine.generation == 0)
        _ = machine.writeCompleted(4096)
        #expect(machine.generation == 1 && machine.remaining == 8192 && machine.written == 4096)
        _ = machine.writeCompleted(-EINTR)
        #expect(machine.generation == 2 && machine.remaining == 8192)
    }
}
