import Foundation
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALSegments

/// The seed's O_DIRECT padding rule (``EndOfLog/next(from:due:segmentFirstLSN:place:nextSegmentFirstLSN:)``):
/// after a record that ends inside a block, the rest of the block may be padding of any content,
/// and the log continues at the next boundary if and only if the record due starts there.
@Suite("The seed's O_DIRECT padding")
struct SeedPaddingTests {
    static let block = 4096

    /// One record's bytes: header (CRC-32C over it and the payload) and payload.
    static func record(_ lsn: LSN, _ payload: [UInt8]) -> [UInt8] {
        var header = RecordHeader(storedType: RecordType.put.rawValue, lsn: lsn, tenant: 1, vshard: 2,
                                  payloadLength: UInt32(payload.count))
        header.crc = payload.withUnsafeBytes { header.computeChecksum(payload: $0) }
        var encoded = [UInt8](repeating: 0, count: RecordHeader.size)
        encoded.withUnsafeMutableBytes { header.encode(into: $0) }
        return encoded + payload
    }

    /// 200 to 3,200 bytes, so that flushes span blocks and records straddle boundaries.
    static func payload(_ lsn: LSN) -> [UInt8] {
        Array("record \(lsn) ".utf8) + [UInt8](repeating: UInt8(lsn & 0xFF), count: 200 + Int(lsn * 997 % 3000))
    }

    /// Pads `bytes` to the next block boundary with `filler` (cycled), as the seed's writer does
    /// with its buffer's leftovers.
    static func padded(_ bytes: [UInt8], with filler: [UInt8]) -> [UInt8] {
        let missing = (block - bytes.count % block) % block
        return bytes + (0..<missing).map { filler.isEmpty ? 0 : filler[$0 % filler.count] }
    }

    /// A segment in the seed's layout: each flush's records, padded to the next block with
    /// `filler` (a stale copy of record `first` followed by noise).
    static func seedSegment(flushes: [ClosedRange<LSN>]) -> [UInt8] {
        var bytes: [UInt8] = []
        for flush in flushes {
            var data: [UInt8] = []
            for lsn in flush { data += record(lsn, payload(lsn)) }
            bytes += padded(data, with: record(flush.lowerBound, payload(flush.lowerBound)) + [0xA5, 0x00, 0x5A])
        }
        return bytes
    }

    @Test("padding holding a CRC-valid stale record is skipped when the record due is at the boundary")
    func stalePaddingIsSkipped() throws {
        try withTemporaryDirectory { dir in
            // Sealed segment 1...4 (two flushes), last segment 5...9 (three flushes).
            try writeFile(dir + "/" + SegmentName.make(firstLSN: 1), Self.seedSegment(flushes: [1...2, 3...4]))
            let last = Self.seedSegment(flushes: [5...6, 7...7, 8...9])
            try writeFile(dir + "/" + SegmentName.make(firstLSN: 5), last)
            #expect(try replayAll(dir).map(\.lsn) == Array(1...9))
            #expect(try replayAll(dir).map(\.payload) == (1...9).map { Self.payload($0) })
            #expect(SegmentedWAL.verify(directory: dir).isClean)
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(wal.nextLSN == 10)
            #expect(try wal.records(from: 1, through: 9).map(\.lsn) == Array(1...9))
            #expect(try wal.commit(.put, payload: bytes("ten")) == 10)
            try wal.close()
            #expect(try replayAll(dir).map(\.lsn) == Array(1...10))
        }
    }

    @Test("a record other than the one due at the boundary keeps the table's meaning")
    func wrongRecordAtTheBoundary() throws {
        try withTemporaryDirectory { dir in
            // Flush 1...2, padding, then record 4 (3 is missing) at the boundary.
            var segment = Self.padded(Self.record(1, Self.payload(1)) + Self.record(2, Self.payload(2)), with: [0x77])
            segment += Self.record(4, Self.payload(4))
            let path = dir + "/" + SegmentName.make(firstLSN: 1)
            try writeFile(path, segment)
            // The last segment: the log ends after record 2, and opening cuts the rest.
            #expect(try replayAll(dir).map(\.lsn) == [1, 2])
            let end = Self.record(1, Self.payload(1)).count + Self.record(2, Self.payload(2)).count
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(dir))
                #expect(wal.nextLSN == 3)
                try wal.close()
            }
            #expect(Array(try fileBytes(path).prefix(end)) == Array(segment.prefix(end)))
            // A sealed segment: corruption where record 3 was due, not a silent end.
            try withTemporaryDirectory { sealed in
                try writeFile(sealed + "/" + SegmentName.make(firstLSN: 1), segment)
                try writeFile(sealed + "/" + SegmentName.make(firstLSN: 3), Self.record(3, Self.payload(3)))
                let (records, error) = replayUntilError(sealed)
                #expect(records.map(\.lsn) == [1, 2])
                #expect(error == .corruption(segment: SegmentName.make(firstLSN: 1), offset: Int64(end), lsn: 3, reason: "bad magic"))
            }
        }
    }

    @Test("padding is never longer than the rest of one block")
    func twoPaddedBlocksAreNotPadding() throws {
        try withTemporaryDirectory { dir in
            var segment = Self.padded(Self.record(1, Self.payload(1)), with: [0x77])
            segment += [UInt8](repeating: 0x66, count: Self.block)  // a whole block of noise
            segment += Self.record(2, Self.payload(2))
            try writeFile(dir + "/" + SegmentName.make(firstLSN: 1), segment)
            #expect(try replayAll(dir).map(\.lsn) == [1])
            try withTemporaryDirectory { sealed in
                try writeFile(sealed + "/" + SegmentName.make(firstLSN: 1), segment)
                try writeFile(sealed + "/" + SegmentName.make(firstLSN: 3), Self.record(3, Self.payload(3)))
                guard case .corruption(_, let offset, let lsn, _)? = replayUntilError(sealed).error else {
                    Issue.record("two padded blocks in a sealed segment must be corruption"); return
                }
                #expect(offset == Int64(Self.record(1, Self.payload(1)).count) && lsn == 2)
            }
        }
    }

    @Test("a sealed segment's last padding ends it only where the next segment takes over")
    func sealedSegmentEndsInPadding() throws {
        try withTemporaryDirectory { dir in
            try writeFile(dir + "/" + SegmentName.make(firstLSN: 1), Self.seedSegment(flushes: [1...3]))
            try writeFile(dir + "/" + SegmentName.make(firstLSN: 4), Self.seedSegment(flushes: [4...5]))
            #expect(try replayAll(dir).map(\.lsn) == Array(1...5))
            // The next segment starting anywhere else makes the padding what it then is: damage.
            try FileManager.default.moveItem(atPath: dir + "/" + SegmentName.make(firstLSN: 4),
                                             toPath: dir + "/" + SegmentName.make(firstLSN: 5))
            guard case .corruption(let segment, let offset, let lsn, _)? = replayUntilError(dir).error else {
                Issue.record("expected corruption"); return
            }
            #expect(segment == SegmentName.make(firstLSN: 1) && lsn == 4)
            #expect(offset == Int64((1...3).map { Self.record($0, Self.payload($0)).count }.reduce(0, +)))
            // Non-zero bytes after the boundary that ends a sealed segment are still damage.
            try withTemporaryDirectory { other in
                try writeFile(other + "/" + SegmentName.make(firstLSN: 1), Self.seedSegment(flushes: [1...3]) + [UInt8](repeating: 0, count: 4095) + [9])
                try writeFile(other + "/" + SegmentName.make(firstLSN: 4), Self.seedSegment(flushes: [4...5]))
                guard case .corruption? = replayUntilError(other).error else {
                    Issue.record("data after the padding that ends a sealed segment must be corruption"); return
                }
            }
        }
    }

    /// Every power cut during a seed-style flush: any subset of the flush's 512-byte sectors on
    /// disk (sampled: every single sector lost, every prefix and suffix, and random subsets),
    /// the file's new size kept or not. The flush's padding holds a CRC-valid stale copy of an
    /// earlier record. Whatever survives, replay returns the records of the flushes before it
    /// — every one that the seed had synced — then possibly some of the flush's own records, each
    /// exactly as written, never a stale record; and opening for writing keeps them all.
    @Test("a power cut in a seed-style flush never loses a synced record nor resurrects a stale one")
    func powerCutDuringASeedFlush() throws {
        let flushes: [ClosedRange<LSN>] = [1...3, 4...4, 5...9, 10...16, 17...18]
        var ends: [Int] = []
        for _ in flushes { ends.append(Self.seedSegment(flushes: Array(flushes.prefix(ends.count + 1))).count) }
        let full = Self.seedSegment(flushes: flushes)
        var states = 0, opened = 0
        var rng = SplitMix64(seed: 25)
        for (index, flush) in flushes.enumerated().dropFirst() {
            let start = ends[index - 1], end = ends[index]
            let sectors = (end - start) / 512
            var subsets: [[Bool]] = []
            for lost in 0..<sectors { subsets.append((0..<sectors).map { $0 != lost }) }
            for cut in 0...sectors { subsets.append((0..<sectors).map { $0 < cut }); subsets.append((0..<sectors).map { $0 >= cut }) }
            for _ in 0..<100 { subsets.append((0..<sectors).map { _ in Bool.random(using: &rng) }) }
            for kept in subsets {
                for sizeKept in [true, false] where sizeKept || !kept.contains(true) {
                    var image = Array(full.prefix(start))
                    if sizeKept {
                        for sector in 0..<sectors {
                            let from = start + sector * 512
                            image += kept[sector] ? Array(full[from..<(from + 512)]) : [UInt8](repeating: 0, count: 512)
                        }
                    }
                    states += 1
                    try withTemporaryDirectory { dir in
                        try writeFile(dir + "/" + SegmentName.make(firstLSN: 1), image)
                        let records = try replayAll(dir)
                        let synced = Int(flush.lowerBound - 1)
                        #expect(records.count >= synced && records.count <= Int(flush.upperBound), "flush \(index): \(records.count)")
                        #expect(records.map(\.lsn) == (0..<records.count).map { LSN($0 + 1) })
                        #expect(records.map(\.payload) == records.map { Self.payload($0.lsn) })
                        if states % 7 == 0 {
                            opened += 1
                            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
                            #expect(wal.nextLSN == LSN(records.count + 1))
                            let next = try wal.commit(.put, payload: bytes("after"))
                            try wal.close()
                            #expect(try replayAll(dir).map(\.lsn) == Array(1...next))
                        }
                    }
                }
            }
        }
        print("seed-flush power cuts: \(states) states, \(opened) opened for writing")
        #expect(states > 500)
    }
}
