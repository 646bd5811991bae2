import Foundation
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALSegments

/// Damaged logs: the replay rules of ``ReplayCursor`` on logs written by us and then broken.
@Suite("Corruption and bad input")
struct CorruptionTests {
    /// Writes `count` records of `payloadSize` bytes with a segment roll every `perSegment` records.
    static func makeLog(_ dir: String, count: Int = 30, perSegment: Int = 10, payloadSize: Int = 100) throws {
        let wal = try SegmentedWAL(configuration: testConfiguration(dir))
        for i in 0..<count {
            if i > 0 && i % perSegment == 0 { try wal.rollSegment() }
            try wal.append(.put, tenant: UInt32(i), payload: [UInt8](repeating: UInt8(i + 1), count: payloadSize))
        }
        try wal.close()
    }

    static let recordLength = RecordHeader.size + 100

    @Test func damageInsideASealedSegmentNamesSegmentOffsetAndLSN() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir)
            let segment = dir + "/wal-00000000000000000001.seg"
            // LSN 4's payload, one byte flipped.
            let offset = 3 * Self.recordLength + RecordHeader.size + 50
            try patchFile(segment, at: offset, with: [0xEE])
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == [1, 2, 3])
            #expect(error == .corruption(segment: "wal-00000000000000000001.seg", offset: Int64(3 * Self.recordLength),
                                         lsn: 4, reason: "checksum mismatch"))
            #expect(error?.description.contains("wal-00000000000000000001.seg") == true)
            // Replay starting past the damaged segment does not need it.
            #expect(try replayAll(dir, from: 11).map(\.lsn) == Array(11...30))
            // Opening for writing works (only the last segment is scanned) and appends continue.
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 31)
        }
    }

    @Test func damageInTheLastSegmentEndsTheLogQuietly() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir)
            let last = dir + "/wal-00000000000000000021.seg"
            try patchFile(last, at: 5 * Self.recordLength + 8, with: [0xFF, 0xFF]) // LSN 26's lsn field
            #expect(try replayAll(dir).map(\.lsn) == Array(1...25))
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 26)
            #expect(try fileSize(last) == 5 * Self.recordLength)
        }
    }

    @Test func missingMiddleSegmentIsAnLSNGap() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir)
            try FileManager.default.removeItem(atPath: dir + "/wal-00000000000000000011.seg")
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == Array(1...10))
            #expect(error == .lsnGap(segment: "wal-00000000000000000021.seg", expected: 11, found: 21))
        }
    }

    @Test func segmentNameThatDisagreesWithItsFirstRecord() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir)
            try FileManager.default.moveItem(atPath: dir + "/wal-00000000000000000011.seg",
                                             toPath: dir + "/wal-00000000000000000012.seg")
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == Array(1...10))
            guard case .lsnGap(let segment, let expected, let found) = error else {
                Issue.record("expected an LSN gap, got \(String(describing: error))"); return
            }
            #expect(segment == "wal-00000000000000000012.seg" && expected == 11 && found == 12)
        }
    }

    @Test func truncatedHeaderInTheLastSegmentIsATornTail() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir)
            let last = dir + "/wal-00000000000000000021.seg"
            try truncateFile(last, to: 9 * Self.recordLength + 12) // 12 bytes of LSN 30's header
            #expect(try replayAll(dir).map(\.lsn) == Array(1...29))
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 30)
        }
    }

    @Test func truncatedHeaderInASealedSegmentIsCorruption() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir)
            try truncateFile(dir + "/wal-00000000000000000011.seg", to: 9 * Self.recordLength + 12)
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == Array(1...19))
            guard case .corruption(let segment, let offset, let lsn, _) = error else {
                Issue.record("expected corruption, got \(String(describing: error))"); return
            }
            #expect(segment == "wal-00000000000000000011.seg" && offset == Int64(9 * Self.recordLength) && lsn == 20)
        }
    }

    /// A header claiming a payload far larger than the file (or than the 64 MiB limit) is
    /// invalid; the reader never allocates from it.
    @Test(arguments: [UInt32(0xFFFF_FFFF), UInt32(64 << 20), UInt32(60 << 20)])
    func hugePayloadLengthIsRejectedWithoutAllocating(length: UInt32) throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir, count: 5, perSegment: 100)
            let segment = dir + "/wal-00000000000000000001.seg"
            var header = RecordHeader(storedType: RecordType.put.rawValue, lsn: 6, tenant: 0, vshard: 0, payloadLength: length)
            header.crc = 0x1234_5678
            var encoded = [UInt8](repeating: 0, count: RecordHeader.size)
            encoded.withUnsafeMutableBytes { header.encode(into: $0) }
            var contents = try fileBytes(segment)
            contents += encoded + [UInt8](repeating: 7, count: 5000)
            try writeFile(segment, contents)

            let file = try SegmentFile.openForReading(path: segment)
            defer { file.close() }
            let scanner = try SegmentScanner(file: file)
            for _ in 0..<5 {
                guard case .record = try scanner.next() else { Issue.record("expected a record"); return }
            }
            guard case .invalid(let offset, _) = try scanner.next() else { Issue.record("expected invalid"); return }
            #expect(offset == Int64(5 * Self.recordLength))
            #expect(scanner.windowCapacity <= SegmentScanner.windowSize)

            #expect(try replayAll(dir).map(\.lsn) == [1, 2, 3, 4, 5])
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 6)
        }
    }

    @Test func newerFormatVersionIsRefused() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir, count: 3, perSegment: 100)
            let segment = dir + "/wal-00000000000000000001.seg"
            // Rewrite LSN 2 as version 3 with a valid CRC: a reader must not guess at a newer format.
            var contents = try fileBytes(segment)
            let start = Self.recordLength
            contents[start + 4] = 3
            var header = try #require(Array(contents[start..<start + RecordHeader.size]).withUnsafeBytes { RecordHeader(decoding: $0) })
            header.crc = Array(contents[start + RecordHeader.size..<start + Self.recordLength]).withUnsafeBytes {
                header.computeChecksum(payload: $0)
            }
            contents.withUnsafeMutableBytes { header.encode(into: UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + RecordHeader.size])) }
            try writeFile(segment, contents)
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == [1])
            #expect(error == .unsupportedFormatVersion(version: 3, segment: "wal-00000000000000000001.seg", offset: Int64(start)))
        }
    }

    @Test func unknownTypesFollowTheRequiredBit() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            try wal.append(.put, payload: bytes("a"))
            try wal.append(RecordType(rawValue: 0x0777), payload: bytes("optional, unknown"))
            try wal.append(.put, payload: bytes("c"))
            try wal.append(RecordType(rawValue: 0x8777), payload: bytes("required, unknown"))
            try wal.close()
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == [1, 3])
            #expect(error == .unknownRequiredRecordType(type: 0x8777, lsn: 4, segment: "wal-00000000000000000001.seg"))
            // Registered, both come back.
            var types = RecordType.seedTypes
            types.insert(RecordType(rawValue: 0x0777))
            types.insert(RecordType(rawValue: 0x8777))
            let all = replayUntilError(dir, recordTypes: types)
            #expect(all.error == nil)
            #expect(all.records.map(\.type.rawValue) == [0x8001, 0x0777, 0x8001, 0x8777])
        }
    }

    @Test func foreignFilesInTheDirectoryAreIgnored() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir, count: 20, perSegment: 10)
            try writeFile(dir + "/garbage", [1, 2, 3])
            try writeFile(dir + "/wal-1.seg", [1, 2, 3])
            try writeFile(dir + "/wal-abcdefghijklmnopqrst.seg", [1, 2, 3])
            try writeFile(dir + "/wal-00000000000000000015.seg.tmp", [1, 2, 3])
            try writeFile(dir + "/WAL-00000000000000000030.SEG", [1, 2, 3])
            #expect(try replayAll(dir).map(\.lsn) == Array(1...20))
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 21)
            #expect(try wal.segments().map(\.firstLSN) == [1, 11])
        }
    }

    /// Random bytes under a segment name after the real segments: not a valid record and a
    /// name the log does not continue into, so replay reports the gap instead of guessing.
    @Test func garbageSegmentAfterTheLog() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir, count: 20, perSegment: 10)
            var rng = SplitMix64(seed: 9)
            try writeFile(dir + "/wal-00000000000000000100.seg", randomPayload(count: 10_000, using: &rng))
            let (records, error) = replayUntilError(dir)
            #expect(records.map(\.lsn) == Array(1...20))
            #expect(error == .lsnGap(segment: "wal-00000000000000000100.seg", expected: 21, found: 100))
        }
    }

    @Test func aDirectoryThatIsAFileIsAConfigurationError() throws {
        try withTemporaryDirectory { dir in
            try writeFile(dir + "/file", [1])
            #expect(throws: WALError.invalidConfiguration("\(dir)/file exists and is not a directory")) {
                try SegmentedWAL(configuration: testConfiguration(dir + "/file"))
            }
        }
    }

    @Test func emptyLastSegmentOpensAtItsName() throws {
        try withTemporaryDirectory { dir in
            try Self.makeLog(dir, count: 10, perSegment: 100)
            try writeFile(dir + "/wal-00000000000000000011.seg", [])
            #expect(try replayAll(dir).map(\.lsn) == Array(1...10))
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 11)
            try wal.append(.put, payload: bytes("x"))
            try wal.close()
            #expect(try replayAll(dir).map(\.lsn) == Array(1...11))
        }
    }

    /// A deterministic mutation campaign: random bytes flipped, cut or inserted anywhere in a
    /// three-segment log. Replay never crashes; it returns a prefix of the real log, then
    /// either ends or throws a WALError.
    @Test func randomMutationsNeverCrashAndOnlyShortenTheLog() throws {
        try withTemporaryDirectory { dir in
            let source = dir + "/source"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: false)
            let wal = try SegmentedWAL(configuration: testConfiguration(source))
            var rng = SplitMix64(seed: 77)
            for i in 0..<60 {
                if i == 20 || i == 40 { try wal.rollSegment() }
                try wal.append(i % 3 == 0 ? .delete : .put, tenant: UInt32(i),
                               payload: randomPayload(count: Int.random(in: 0...3000, using: &rng), using: &rng))
                if i % 5 == 0 { try wal.sync() }
            }
            try wal.close()
            let original = try replayAll(source)
            let files = try segmentPaths(source).map { ($0, try fileBytes($0)) }
            for round in 0..<150 {
                let target = dir + "/round"
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
                let victim = Int.random(in: 0..<files.count, using: &rng)
                for (index, (path, contents)) in files.enumerated() {
                    var mutated = contents
                    if index == victim && !mutated.isEmpty {
                        switch Int.random(in: 0..<3, using: &rng) {
                        case 0:
                            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                                mutated[Int.random(in: 0..<mutated.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                            }
                        case 1:
                            mutated = Array(mutated.prefix(Int.random(in: 0..<mutated.count, using: &rng)))
                        default:
                            let at = Int.random(in: 0...mutated.count, using: &rng)
                            mutated.insert(contentsOf: randomPayload(count: Int.random(in: 1...64, using: &rng), using: &rng), at: at)
                        }
                    }
                    try writeFile(target + "/" + FilePaths.lastComponent(path), mutated)
                }
                let (records, _) = replayUntilError(target)
                #expect(records.count <= original.count, "round \(round)")
                #expect(Array(original.prefix(records.count)) == records, "round \(round)")
            }
        }
    }
}
