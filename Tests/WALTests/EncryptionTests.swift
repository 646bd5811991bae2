import Foundation
import Logging
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALIO
@testable import WALEncryption
@testable import WALSegments

@Suite("Encryption at rest")
struct EncryptionTests {
    static let key1 = try! EncryptionKey(id: 1, bytes: (0..<32).map { UInt8($0) })
    static let key2 = try! EncryptionKey(id: 2, bytes: (0..<32).map { UInt8(255 - $0) })

    func configuration(_ dir: String, ring: KeyRing?, engine: IOEngineChoice = .automatic,
                       segmentTargetSize: Int64 = 64 << 20) -> WALConfiguration {
        var configuration = testConfiguration(dir, engine: engine, segmentTargetSize: segmentTargetSize)
        configuration.encryption = ring
        return configuration
    }

    /// The seed's scheme, checked against the shared vector (key and epoch from its manifest;
    /// the seed stores no preamble, so the epoch is supplied).
    @Test func sharedVectorDecryptsToTheListedPlaintexts() throws {
        let manifest = try VectorTests.manifest("encrypted")
        let key = try EncryptionKey(id: 0, bytes: hexBytes(manifest["key_hex"] as! String))
        let ring = KeyRing(current: key, seedEpoch: hexBytes(manifest["epoch_hex"] as! String))
        try withTemporaryDirectory { dir in
            try VectorTests.copy("encrypted", to: dir)
            var stream = SegmentedWAL.records(in: dir, keyRing: ring)
            var records: [WALRecord] = []
            while let record = try stream.next() { records.append(record) }
            let expected = (manifest["records"] as! [[String: Any]]).map(VectorTests.ExpectedRecord.init)
            #expect(records.count == expected.count)
            for (record, want) in zip(records, expected) {
                #expect(record.lsn == want.lsn && record.isEncrypted)
                #expect(record.payload.count == want.length)
                #expect(sha256Hex(record.payload) == want.sha256, "LSN \(want.lsn)")
            }
            // Without the epoch, or with another key, it is an authentication error, never garbage.
            let wrong = KeyRing(current: Self.key1, seedEpoch: hexBytes(manifest["epoch_hex"] as! String))
            let (_, error) = replayUntilError(dir, keyRing: wrong)
            #expect(error == .authenticationFailed(segment: "wal-00000000000000000001.seg", lsn: 1))
        }
    }

    /// The case the seed fails: records written in one process state are readable after a
    /// restart with the same key file, across rollovers.
    @Test(arguments: availableEngines)
    func roundTripAcrossRestartWithAKeyFile(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir + "/key"
            try writeFile(keyFile, (0..<32).map { UInt8($0 &* 7) })
            var rng = SplitMix64(seed: 21)
            var payloads: [[UInt8]] = []
            do {
                let ring = KeyRing(current: try EncryptionKey(id: 9, contentsOfFile: keyFile))
                let wal = try SegmentedWAL(configuration: configuration(dir + "/wal", ring: ring, engine: engine, segmentTargetSize: 200_000))
                for i in 0..<120 {
                    let size = i % 40 == 0 ? Int.random(in: 1 << 20...3 << 20, using: &rng) : Int.random(in: 0...5000, using: &rng)
                    let payload = randomPayload(count: size, using: &rng)
                    try wal.append(.put, tenant: UInt32(i), payload: payload)
                    payloads.append(payload)
                    if i % 7 == 0 { try wal.sync() }
                }
                try wal.close()
                #expect(try wal.segments().count > 3)
            }
            let ring = KeyRing(current: try EncryptionKey(id: 9, contentsOfFile: keyFile))
            let wal = try SegmentedWAL(configuration: configuration(dir + "/wal", ring: ring, engine: engine))
            let records = try wal.records(from: 1, limit: 1000).records
            #expect(records.map(\.payload) == payloads)
            #expect(records.allSatisfy { $0.isEncrypted })
            #expect(records.map(\.tenant) == (0..<120).map { UInt32($0) })
            // Every segment starts with a preamble naming key 9, each with its own epoch.
            var epochs: Set<[UInt8]> = []
            for path in try segmentPaths(dir + "/wal") where try fileSize(path) > 0 {
                let head = try fileBytes(path).prefix(16)
                #expect(Array(head.prefix(4)) == Array("WALP".utf8))
                #expect(head[head.startIndex + 7] == 9)
                epochs.insert(Array(head[head.startIndex + 8..<head.startIndex + 12]))
            }
            let segmentCount = try segmentPaths(dir + "/wal").filter { try fileSize($0) > 0 }.count
            #expect(epochs.count == segmentCount)
            // Without a key: stored bytes, flagged; with requirePlaintext: an error.
            let stored = try replayAll(dir + "/wal")
            #expect(stored.allSatisfy { $0.isEncrypted } && stored[1].payload.count == payloads[1].count + 16)
            let (_, error) = replayUntilError(dir + "/wal", requirePlaintext: true)
            #expect(error == .encryptedRecordWithoutKey(segment: "wal-00000000000000000001.seg", lsn: 1))
        }
    }

    @Test func rotationKeepsOldSegmentsReadableInOnePass() throws {
        try withTemporaryDirectory { dir in
            do {
                let wal = try SegmentedWAL(configuration: configuration(dir, ring: KeyRing(current: Self.key1)))
                for i in 0..<10 { try wal.append(.put, payload: bytes("one-\(i)")) }
                try wal.close()
            }
            do {
                let wal = try SegmentedWAL(configuration: configuration(dir, ring: KeyRing(current: Self.key2, previous: [Self.key1])))
                #expect(wal.nextLSN == 11)
                for i in 0..<10 { try wal.append(.put, payload: bytes("two-\(i)")) }
                try wal.close()
            }
            let ring = KeyRing(current: Self.key2, previous: [Self.key1])
            let records = replayUntilError(dir, keyRing: ring)
            #expect(records.error == nil)
            #expect(records.records.map(\.payload) == (0..<10).map { bytes("one-\($0)") } + (0..<10).map { bytes("two-\($0)") })
            // The old key dropped from the ring: its segment names a key the ring lacks.
            let (before, error) = replayUntilError(dir, keyRing: KeyRing(current: Self.key2))
            #expect(before.isEmpty)
            #expect(error == .unknownKey(id: 1, segment: "wal-00000000000000000001.seg"))
        }
    }

    @Test func wrongKeyIsAnAuthenticationError() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir, ring: KeyRing(current: Self.key1)))
            try wal.append(.put, payload: bytes("secret"))
            try wal.close()
            let impostor = try EncryptionKey(id: 1, bytes: [UInt8](repeating: 7, count: 32))
            let (records, error) = replayUntilError(dir, keyRing: KeyRing(current: impostor))
            #expect(records.isEmpty)
            #expect(error == .authenticationFailed(segment: "wal-00000000000000000001.seg", lsn: 1))
            let onDisk = try fileBytes(dir + "/wal-00000000000000000001.seg")
            #expect(!onDisk.containsSubsequence(bytes("secret")))
        }
    }

    enum Tamper: String, CaseIterable { case ciphertext, tag, header, preambleEpoch, preambleKeyID, preambleSalt }

    /// Any changed bit (with the CRC recomputed, so only authentication can notice) is an
    /// error naming segment and LSN; nothing of the record is returned.
    @Test(arguments: Tamper.allCases)
    func tamperingIsDetected(what: Tamper) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir, ring: KeyRing(current: Self.key1)))
            try wal.append(.put, tenant: 5, payload: bytes("first record"))
            try wal.append(.put, tenant: 5, payload: bytes("second record"))
            try wal.close()
            let path = dir + "/wal-00000000000000000001.seg"
            var contents = try fileBytes(path)
            let first = SegmentPreamble.size
            let firstLength = RecordHeader.size + bytes("first record").count + 16
            let second = first + firstLength
            switch what {
            case .ciphertext: contents[second + RecordHeader.size + 2] ^= 0x01
            case .tag: contents[second + RecordHeader.size + bytes("second record").count + 3] ^= 0x80
            case .header: contents[second + 16] ^= 0x01 // tenant
            case .preambleEpoch: contents[9] ^= 0x01
            case .preambleKeyID: contents[7] = 3
            case .preambleSalt: contents[SegmentPreamble.version1Size + 5] ^= 0x01
            }
            if what != .preambleEpoch && what != .preambleKeyID && what != .preambleSalt {
                // Recompute the CRC so the damage passes the checksum.
                var header = try #require(Array(contents[second..<second + RecordHeader.size]).withUnsafeBytes { RecordHeader(decoding: $0) })
                let payload = Array(contents[second + RecordHeader.size..<contents.count])
                header.crc = payload.withUnsafeBytes { header.computeChecksum(payload: $0) }
                contents.withUnsafeMutableBytes { header.encode(into: UnsafeMutableRawBufferPointer(rebasing: $0[second..<second + RecordHeader.size])) }
            }
            try writeFile(path, contents)
            let ring = KeyRing(current: Self.key1, previous: [Self.key2])
            let (records, error) = replayUntilError(dir, keyRing: ring)
            switch what {
            case .ciphertext, .tag, .header:
                #expect(records.map(\.payload) == [bytes("first record")])
                #expect(error == .authenticationFailed(segment: "wal-00000000000000000001.seg", lsn: 2))
            case .preambleEpoch, .preambleSalt:
                #expect(records.isEmpty)
                #expect(error == .authenticationFailed(segment: "wal-00000000000000000001.seg", lsn: 1))
            case .preambleKeyID:
                #expect(records.isEmpty)
                #expect(error == .unknownKey(id: 3, segment: "wal-00000000000000000001.seg"))
            }
        }
    }

    /// Segments written with a version 1 preamble (records under the ring's key itself, before
    /// per-segment keys) stay readable, beside version 2 segments of the same key.
    @Test func version1PreamblesStayReadable() throws {
        try withTemporaryDirectory { dir in
            let preamble = SegmentPreamble(keyID: Self.key1.id, epoch: [1, 2, 3, 4], salt: nil)
            let file = try SegmentFile.open(path: SegmentDirectory.path(dir, firstLSN: 1), create: true, directIO: .disabled,
                                            logger: Logger(label: "test"))
            let writer = try SegmentWriter(file: file, engine: POSIXEngine(), firstLSN: 1, nextLSN: 1, end: 0, bufferSize: 8192,
                                           preamble: preamble, cipher: RecordCipher(key: Self.key1, preamble: preamble))
            for text in ["old one", "old two"] {
                try bytes(text).withUnsafeBytes { payload in
                    _ = try Result { () throws(WALError) -> LSN in
                        try writer.append(storedType: RecordType.put.rawValue, tenant: 0, vshard: 0, payload: payload,
                                          holdingIORole: false)  // a few bytes: they fit
                    }.get()
                }
            }
            try writer.seal()
            #expect(try fileBytes(SegmentDirectory.path(dir, firstLSN: 1))[4] == 1, "a version 1 preamble")
            let wal = try SegmentedWAL(configuration: configuration(dir, ring: KeyRing(current: Self.key1)))
            try wal.append(.put, payload: bytes("new"))
            try wal.close()
            #expect(try fileBytes(SegmentDirectory.path(dir, firstLSN: 3))[4] == 2, "new segments get version 2")
            let (records, error) = replayUntilError(dir, keyRing: KeyRing(current: Self.key1))
            #expect(error == nil)
            #expect(records.map(\.payload) == [bytes("old one"), bytes("old two"), bytes("new")])
        }
    }

    /// A WAL can start unencrypted, turn encryption on (from the next segment) and off again.
    @Test func mixedLogsAcrossReopens() throws {
        try withTemporaryDirectory { dir in
            for (round, ring) in [nil, KeyRing(current: Self.key1), nil, KeyRing(current: Self.key2, previous: [Self.key1])].enumerated() {
                let wal = try SegmentedWAL(configuration: configuration(dir, ring: ring))
                #expect(wal.nextLSN == LSN(round * 5 + 1))
                for i in 0..<5 { try wal.append(.put, payload: bytes("round \(round) record \(i)")) }
                try wal.close()
            }
            let ring = KeyRing(current: Self.key2, previous: [Self.key1])
            let (records, error) = replayUntilError(dir, keyRing: ring)
            #expect(error == nil)
            #expect(records.count == 20)
            #expect(records.map(\.isEncrypted) == (0..<20).map { ($0 / 5) % 2 == 1 })
            #expect(records.map(\.payload) == (0..<20).map { bytes("round \($0 / 5) record \($0 % 5)") })
        }
    }

    @Test func payloadLimitLeavesRoomForTheTag() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: configuration(dir, ring: KeyRing(current: Self.key1)))
            let limit = RecordHeader.maxPayloadLength - 16
            #expect(throws: WALError.payloadTooLarge(size: limit + 1, limit: limit)) {
                try wal.append(.put, payload: [UInt8](repeating: 1, count: limit + 1))
            }
            try wal.append(.put, payload: [UInt8]())
            try wal.close()
            let records = replayUntilError(dir, keyRing: KeyRing(current: Self.key1))
            #expect(records.records.map(\.payload) == [[]])
        }
    }

    @Test func keysMustBe32BytesAndNeverShowTheirBytes() throws {
        #expect(throws: WALError.invalidKey("an AES-256 key is 32 bytes, got 31")) {
            try EncryptionKey(id: 0, bytes: [UInt8](repeating: 1, count: 31))
        }
        try withTemporaryDirectory { dir in
            try writeFile(dir + "/short", [UInt8](repeating: 1, count: 33))
            #expect(throws: WALError.invalidKey("key file \(dir)/short must hold exactly 32 bytes, it holds 33")) {
                try EncryptionKey(id: 0, contentsOfFile: dir + "/short")
            }
            #expect(throws: WALError.io(operation: "open", errno: ENOENT, path: dir + "/missing")) {
                try EncryptionKey(id: 0, contentsOfFile: dir + "/missing")
            }
        }
        let key = try EncryptionKey(id: 4, bytes: [UInt8](repeating: 0xAB, count: 32))
        #expect(!"\(key)".lowercased().contains("ab"))
        #expect(!"\(KeyRing(current: key))".lowercased().contains("ab"))
    }
}

func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        bytes.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { Array(self[$0..<$0 + needle.count]) == needle }
    }
}
