import Foundation
import Synchronization
import Testing
@testable import WAL

/// Truncation while committers and readers run: a reader never breaks inside a segment it has
/// open, and truncation never deletes a segment holding a record at or above the checkpoint.
@Suite("Truncation under load")
struct TruncationUnderLoadTests {
    @Test("Committers, readers at the checkpoint and a truncator run together", arguments: availableEngines)
    func truncateWhileCommittingAndReading(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: engine, segmentTargetSize: 32 << 10)
            configuration.bufferSize = 16 << 10
            let wal = try SegmentedWAL(configuration: configuration)
            // The checkpoint, and where each running reader started: truncation goes no further
            // than either (a database keeps a replication slot's position the same way).
            let positions = Mutex((checkpoint: LSN(1), readers: [Int: LSN]()))
            let stop = Atomic<Bool>(false)
            let problems = Mutex<[String]>([])
            let counts = Mutex((reads: 0, truncations: 0, deleted: 0))
            runThreads(5) { role in
                switch role {
                case 0, 1:  // committers
                    var sequence = 0
                    while !stop.load(ordering: .relaxed) {
                        do { try wal.commit(.put, payload: taggedPayload(writer: role, sequence: sequence, size: 200)) } catch {
                            problems.withLock { $0.append("commit: \(error)") }
                            return
                        }
                        sequence += 1
                    }
                case 2, 3:  // readers: from the checkpoint to the end, over and over
                    while !stop.load(ordering: .relaxed) {
                        let from = positions.withLock { positions in
                            positions.readers[role] = positions.checkpoint
                            return positions.checkpoint
                        }
                        var stream = wal.records(from: from)
                        var expected = from
                        do {
                            while let record = try stream.next() {
                                if record.lsn != expected { problems.withLock { $0.append("reader from \(from): LSN \(record.lsn), expected \(expected)") } }
                                expected = record.lsn + 1
                            }
                        } catch {
                            problems.withLock { $0.append("reader from \(from): \(error)") }
                        }
                        _ = positions.withLock { $0.readers.removeValue(forKey: role) }
                        counts.withLock { $0.reads += 1 }
                    }
                default:  // the truncator: advance the checkpoint behind the durable LSN, truncate before it
                    // Runs until 30 segments were deleted (about 1.5 s alone here). The deadline only
                    // ends a run that is broken; it is generous because under the parallel test suite
                    // on a slow disk 10 s once gave 29 (CI, stop 11).
                    let deadline = DispatchTime.now().uptimeNanoseconds + 180_000_000_000
                    while counts.withLock({ $0.deleted }) < 30 && DispatchTime.now().uptimeNanoseconds < deadline {
                        usleep(2_000)
                        let durable = wal.durableLSN
                        guard durable > 100 else { continue }
                        let target = positions.withLock { positions in
                            positions.checkpoint = max(positions.checkpoint, durable - 50)
                            return min(positions.checkpoint, positions.readers.values.min() ?? .max)
                        }
                        do {
                            let result = try wal.truncate(before: target)
                            let first = try wal.segments().first!.firstLSN
                            if first > target {
                                problems.withLock { $0.append("truncate(before: \(target)) left the first segment at \(first)") }
                            }
                            counts.withLock { $0.truncations += 1; $0.deleted += result.segmentsDeleted }
                        } catch {
                            problems.withLock { $0.append("truncate: \(error)") }
                        }
                    }
                    stop.store(true, ordering: .relaxed)
                }
            }
            try wal.close()
            #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0.prefix(10) })")
            let (reads, truncations, deleted) = counts.withLock { $0 }
            #expect(reads > 10 && truncations > 10 && deleted >= 30, "reads \(reads), truncations \(truncations), deleted \(deleted)")
        }
    }

    @Test("A reader keeps the segment it has open when truncation deletes it, then reports what it lost")
    func readerKeepsItsOpenSegment() throws {
        try withTemporaryDirectory { dir in
            try CorruptionTests.makeLog(dir, count: 40, perSegment: 10)  // segments at 1, 11, 21, 31
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            var stream = wal.records(from: 1)
            #expect(try stream.next()?.lsn == 1)  // segment 1 is open now
            let result = try wal.truncate(before: 31)
            #expect(result.segmentsDeleted == 3)
            // The rest of segment 1 comes from the open file; segment 11 is gone.
            var lsns: [LSN] = []
            do throws(WALError) {
                while let record = try stream.next() { lsns.append(record.lsn) }
                Issue.record("the reader must learn that records it wanted were truncated")
            } catch {
                #expect(error == .truncatedWhileReading(segment: "wal-00000000000000000011.seg", lsn: 11))
            }
            #expect(lsns == Array(2...10))
            // A reader from the checkpoint is unaffected.
            #expect(try replayAll(dir, from: 31).map(\.lsn) == Array(31...40))
            try wal.close()
        }
    }
}
