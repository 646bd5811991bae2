import Testing
@testable import WAL
@testable import WALSegments

/// The ring clears only the bytes of a buffer that can be stale (`BufferRing`'s zero mark):
/// whatever the sizes of the records and the pattern of commits, nothing after the last record
/// in the file is anything but zeros — no byte of an earlier use of a buffer reaches the disk.
@Suite("No stale buffer bytes reach the disk")
struct StaleBytesTests {
    @Test("after every commit, the file holds only zeros past the last record",
          arguments: availableEngines, [1, 4])
    func onlyZerosAfterTheLastRecord(engine: IOEngineChoice, depth: Int) throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir, engine: engine)
            configuration.bufferSize = 8192  // buffers cycle fast
            configuration.flushesInFlight = depth
            let wal = try SegmentedWAL(configuration: configuration)
            defer { try? wal.close() }
            let sizes = [1, 17, 100, 700, 3000, 6000, 9000]  // 9000: more than a buffer
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            var end = 0
            for index in 0..<300 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let size = sizes[Int(state >> 33) % sizes.count]
                let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: index) | 0x80, count: size)  // never zero
                if state >> 62 == 0 {
                    _ = try wal.append(.put, payload: payload)  // some records wait for a later commit
                } else {
                    _ = try wal.commit(.put, payload: payload)
                }
                end += 30 + size
                guard state >> 62 != 0 else { continue }
                let bytes = try fileBytes(SegmentDirectory.path(dir, firstLSN: 1))
                let stale = bytes[min(end, bytes.count)...].firstIndex { $0 != 0 }
                #expect(stale == nil, "commit \(index): a non-zero byte at \(stale ?? 0), past the last record's end \(end)")
                if stale != nil { return }
            }
        }
    }
}
