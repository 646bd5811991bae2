import Foundation
import Testing
@testable import WAL
@testable import WALIO
import Logging

/// Counters that can wrap, tested at their wrap.
@Suite("Counters at their wrap", .serialized)
struct CounterWrapTests {
    /// io_uring user_data carries 30 bits of a flight's id. With several flushes in flight,
    /// ids that pass 2^30 used to lose their completions, and commits hung forever holding the
    /// I/O role. The writer's flight ids start just below the wrap here.
    @Test("commits go on when flight ids pass 2^30 (several flushes in flight)",
          .enabled(if: EngineTests.ioUringAvailable, "several flushes in flight need io_uring"))
    func flightIDsPassTheTagWidth() throws {
        TestHooks.firstFlightIDOverride = (1 << 30) - 8
        defer { TestHooks.firstFlightIDOverride = nil }
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: .ioUring)
            configuration.flushesInFlight = 4
            let wal = try SegmentedWAL(configuration: configuration)
            let done = DispatchSemaphore(value: 0)
            let finished = Locked(0)
            for worker in 0..<4 {
                Thread.detachNewThread {
                    for sequence in 0..<40 {
                        _ = try? wal.commit(.put, payload: taggedPayload(writer: worker, sequence: sequence))
                    }
                    finished.withLock { $0 += 1 }
                    done.signal()
                }
            }
            for _ in 0..<4 {
                if done.wait(timeout: .now() + 30) == .timedOut { break }
            }
            #expect(finished.withLock { $0 } == 4, "commits hung past the flight id wrap")
            guard finished.withLock({ $0 }) == 4 else { return }  // a hung WAL cannot be closed
            try wal.close()
            #expect(try replayAll(dir).count == 160)
        }
    }
}

/// The io_uring engine abandoning its flights after a failure (#23, point 6).
@Suite("Abandoning flights")
struct AbandonFlightsTests {
    /// Two writes in flight, then the ring fails while their completions are due: the engine
    /// must not claim the kernel is done with their buffers. With a working ring it drains both.
    @Test("a ring that fails while completions are due does not release the buffers",
          .enabled(if: EngineTests.ioUringAvailable, "needs io_uring"), arguments: [false, true])
    func abandonWithCompletionsDue(ringFails: Bool) throws {
        try withTemporaryDirectory { dir in
            let engine = try IOUringEngine(flushesInFlight: 4)
            defer { engine.shutdown() }
            let file = try SegmentFile.open(path: dir + "/flights", create: true, directIO: .automatic, logger: Logger(label: "test"))
            defer { file.close() }
            let buffers = [AlignedBuffer(capacity: 4096), AlignedBuffer(capacity: 4096)]
            for (index, buffer) in buffers.enumerated() {
                try engine.start(WriteRequest(bytes: UnsafeRawBufferPointer(buffer.bytes), offset: Int64(index * 4096),
                                              file: file, durability: .none), id: index + 1)
            }
            var handlers = FaultHooks.Handlers()
            handlers.error = { operation, _ in ringFails && operation == "io_uring_wait_cqe" ? EBADR : nil }
            let drained = FaultHooks.shared.with(dir, handlers) { engine.abandonFlights() }
            #expect(drained == !ringFails)
            if !drained { AlignedBuffer.pinForever(buffers) }  // as the writer does: the kernel may read them still
        }
    }
}
