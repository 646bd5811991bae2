import Testing
@testable import WAL
@testable import WALFormat
@testable import WALSegments

@Suite("Record format")
struct FormatTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        // The CRC-32C check value: CRC of the ASCII digits "123456789".
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        #expect([UInt8]().withUnsafeBytes { CRC32C.checksum($0) } == 0)
    }

    @Test func crc32cIsIncremental() {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = data.withUnsafeBytes { CRC32C.checksum($0) }
        var state = CRC32C()
        data.withUnsafeBytes { state.update(UnsafeRawBufferPointer(rebasing: $0[..<3333])) }
        data.withUnsafeBytes { state.update(UnsafeRawBufferPointer(rebasing: $0[3333...])) }
        #expect(state.value == whole)
    }

    /// The byte layout of FORMAT-SEED.md, field by field.
    @Test func headerLayoutIsTheSeeds() throws {
        var header = RecordHeader(storedType: 0x8001, lsn: 0x0102_0304_0506_0708, tenant: 0xA1A2_A3A4, vshard: 0xB1B2,
                                  payloadLength: 5)
        let payload: [UInt8] = Array("hello".utf8)
        header.crc = payload.withUnsafeBytes { header.computeChecksum(payload: $0) }
        var bytes = [UInt8](repeating: 0, count: RecordHeader.size)
        bytes.withUnsafeMutableBytes { header.encode(into: $0) }
        #expect(Array(bytes[0..<4]) == [0x57, 0x4E, 0x59, 0x53])
        #expect(Array(bytes[4..<6]) == [2, 0])
        #expect(Array(bytes[6..<8]) == [0x01, 0x80])
        #expect(Array(bytes[8..<16]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(bytes[16..<20]) == [0xA4, 0xA3, 0xA2, 0xA1])
        #expect(Array(bytes[20..<22]) == [0xB2, 0xB1])
        #expect(Array(bytes[22..<26]) == [5, 0, 0, 0])
        let expectedCRC = (Array(bytes[0..<26]) + payload).withUnsafeBytes { CRC32C.checksum($0) }
        #expect(Array(bytes[26..<30]) == withUnsafeBytes(of: expectedCRC.littleEndian) { Array($0) })
        let decoded = try #require(bytes.withUnsafeBytes { RecordHeader(decoding: $0) })
        #expect(decoded == header)
    }

    @Test func headerWithWrongMagicDoesNotDecode() {
        var bytes = [UInt8](repeating: 0, count: RecordHeader.size)
        bytes[0] = 0x57
        #expect(bytes.withUnsafeBytes { RecordHeader(decoding: $0) } == nil)
    }

    @Test func recordTypeFlags() {
        #expect(RecordType.put.isRequired)
        #expect(!RecordType.timeseriesBatch.isRequired)
        #expect(RecordType(rawValue: 0xC001) == .put, "the encrypted bit is storage, not identity")
        #expect(RecordType.isEncrypted(storedValue: 0xC001))
        #expect(!RecordType.isEncrypted(storedValue: 0x8001))
        #expect(RecordType.seedTypes.count == 19)
        #expect(RecordType.put.description.contains("put") || RecordType.put.description.contains("Put"))
        let custom = RecordType(rawValue: 0x8100)
        #expect(custom.isRequired && !RecordType.seedTypes.contains(custom))
    }

    @Test func segmentNames() {
        #expect(SegmentName.make(firstLSN: 1) == "wal-00000000000000000001.seg")
        #expect(SegmentName.make(firstLSN: UInt64.max) == "wal-18446744073709551615.seg")
        #expect(SegmentName.parse("wal-00000000000000000042.seg") == 42)
        #expect(SegmentName.parse("wal-0000000000000000042.seg") == nil)
        #expect(SegmentName.parse("wal-0000000000000000004a.seg") == nil)
        #expect(SegmentName.parse("wal-00000000000000000042.seg.tmp") == nil)
        #expect(SegmentName.parse("wal-99999999999999999999.seg") == nil, "overflows UInt64")
    }
}
