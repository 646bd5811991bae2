import Testing
@testable import WAL

/// One test for each test in the seed's `segmented.rs`, same scenario and assertions
/// (plus what the seed could not assert).
@Suite("Seed counterparts")
struct SeedCounterpartTests {
    @Test(arguments: availableEngines)
    func createAndAppend(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir + "/wal", engine: engine))
            let lsn1 = try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("hello"))
            let lsn2 = try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("world"))
            try wal.sync()
            #expect(lsn1 == 1)
            #expect(lsn2 == 2)
            #expect(wal.nextLSN == 3)
            #expect(wal.durableLSN == 2)
        }
    }

    @Test(arguments: availableEngines)
    func replayAfterClose(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/wal"
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(path, engine: engine))
                try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("first"))
                try wal.append(.delete, tenant: 2, vshard: 1, payload: bytes("second"))
                try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("third"))
                try wal.sync()
            }
            let wal = try SegmentedWAL(configuration: testConfiguration(path, engine: engine))
            let records = try wal.records(from: 1, limit: 100).records
            #expect(records.map(\.payload) == [bytes("first"), bytes("second"), bytes("third")])
            #expect(records[1].type == .delete && records[1].tenant == 2 && records[1].vshard == 1)
            #expect(wal.nextLSN == 4)
        }
    }

    @Test(arguments: availableEngines)
    func automaticSegmentRollover(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir + "/wal", engine: engine, segmentTargetSize: 100, directIO: .disabled))
            for i in 0..<20 {
                try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("record-\(String(format: "%04d", i))"))
                try wal.sync()
            }
            let segments = try wal.segments()
            #expect(segments.count > 1, "expected multiple segments, got \(segments.count)")
            #expect(segments.filter(\.isActive).count == 1 && segments.last!.isActive)
            let records = try replayAll(dir + "/wal")
            #expect(records.count == 20)
            for (i, record) in records.enumerated() {
                #expect(record.lsn == LSN(i + 1))
                #expect(record.payload == bytes("record-\(String(format: "%04d", i))"))
            }
        }
    }

    @Test(arguments: availableEngines)
    func truncationRemovesOldSegments(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir + "/wal", engine: engine, segmentTargetSize: 100, directIO: .disabled))
            for i in 0..<20 {
                try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("record-\(String(format: "%04d", i))"))
                try wal.sync()
            }
            let before = try wal.segments()
            #expect(before.count > 1)
            let sizeBefore = try wal.totalSize
            let result = try wal.truncate(before: 15)
            #expect(result.segmentsDeleted > 0)
            #expect(result.bytesReclaimed > 0)
            let after = try wal.segments()
            #expect(after.count == before.count - result.segmentsDeleted)
            #expect(try wal.totalSize == sizeBefore - result.bytesReclaimed)
            // Stronger than the seed: exactly the segments wholly below 15 are gone, so
            // replay starts at or below 15 and runs contiguously to the end.
            let records = try wal.records(from: 1, limit: 100).records
            #expect(records.first!.lsn <= 15)
            #expect(records.last!.lsn == 20)
            #expect(records.map(\.lsn) == Array(records.first!.lsn...20))
            #expect(after.first!.firstLSN == records.first!.lsn)
        }
    }

    @Test(arguments: availableEngines)
    func replayFromCheckpointLSN(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir + "/wal", engine: engine))
            for i in 0..<10 { try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("r\(i)")) }
            try wal.sync()
            var stream = wal.records(from: 6)
            var records: [WALRecord] = []
            while let record = try stream.next() { records.append(record) }
            #expect(records.count == 5)
            #expect(records.first?.lsn == 6)
            #expect(records.last?.lsn == 10)
            #expect(records.first?.payload == bytes("r5"))
        }
    }

    @Test(arguments: availableEngines)
    func totalSizeBytes(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir + "/wal", engine: engine))
            try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("data"))
            try wal.sync()
            #expect(try wal.totalSize > 0)
            try wal.close()
            // Sealed: exactly one header plus the payload, no padding left behind.
            #expect(try fileSize(dir + "/wal/wal-00000000000000000001.seg") == RecordHeader.size + 4)
        }
    }

    @Test(arguments: availableEngines)
    func reopenContinuesLSN(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/wal"
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(path, engine: engine))
                try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("a"))
                try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("b"))
                try wal.sync()
            }
            do {
                let wal = try SegmentedWAL(configuration: testConfiguration(path, engine: engine))
                #expect(wal.nextLSN == 3)
                #expect(try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("c")) == 3)
                try wal.sync()
            }
            let wal = try SegmentedWAL(configuration: testConfiguration(path, engine: engine))
            #expect(try wal.records(from: 1, limit: 10).records.map(\.payload) == [bytes("a"), bytes("b"), bytes("c")])
        }
    }

    /// The seed's `encryption_persists_across_segments`, as far as the foundation goes:
    /// records stored with the encrypted flag survive rollover and reopen and come back
    /// marked as encrypted. (Encryption itself is the encryption issue's.)
    @Test(arguments: availableEngines)
    func encryptedFlagPersistsAcrossSegments(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/wal"
            let wal = try SegmentedWAL(configuration: testConfiguration(path, engine: engine, segmentTargetSize: 100, directIO: .disabled))
            for i in 0..<10 {
                _ = try bytes("enc-\(i)").withUnsafeBytes { payload in
                    try wal.append(storedType: RecordType.put.rawValue | RecordType.encryptedFlag, tenant: 1, vshard: 0,
                                   payload: payload)
                }
                try wal.sync()
            }
            #expect(try wal.segments().count > 1)
            try wal.close()
            let records = try replayAll(path)
            #expect(records.count == 10)
            #expect(records.allSatisfy { $0.isEncrypted && $0.type == .put })
        }
    }

    @Test(arguments: availableEngines)
    func replayFromLimitBasic(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            for i in 0..<10 { try wal.append(.put, tenant: 1, vshard: 0, payload: [UInt8(i)]) }
            try wal.sync()
            let all = try wal.records(from: 1, limit: 100)
            #expect(all.records.count == 10)
            #expect(!all.hasMore)
            let three = try wal.records(from: 1, limit: 3)
            #expect(three.records.count == 3)
            #expect(three.hasMore)
            #expect(three.records[0].lsn == 1)
            #expect(three.records[2].lsn == 3)
            let exact = try wal.records(from: 1, limit: 10)
            #expect(exact.records.count == 10 && !exact.hasMore)
        }
    }

    @Test(arguments: availableEngines)
    func replayFromLimitWithLSNFilter(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            for i in 0..<10 { try wal.append(.put, tenant: 1, vshard: 0, payload: [UInt8(i)]) }
            try wal.sync()
            let page = try wal.records(from: 6, limit: 100)
            #expect(page.records.count == 5)
            #expect(!page.hasMore)
            #expect(page.records[0].lsn == 6)
            #expect(page.records[0].payload == [5])
            let two = try wal.records(from: 6, limit: 2)
            #expect(two.records.count == 2)
            #expect(two.hasMore)
        }
    }

    @Test(arguments: availableEngines)
    func replayFromLimitEmpty(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            try wal.append(.put, tenant: 1, vshard: 0, payload: bytes("a"))
            try wal.sync()
            let page = try wal.records(from: 999, limit: 100)
            #expect(page.records.isEmpty)
            #expect(!page.hasMore)
        }
    }

    @Test(arguments: availableEngines)
    func replayFromLimitAcrossSegments(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine))
            for i in 0..<10 { try wal.append(.put, tenant: 1, vshard: 0, payload: [UInt8(i)]) }
            try wal.sync()
            try wal.rollSegment()
            for i in 10..<20 { try wal.append(.put, tenant: 1, vshard: 0, payload: [UInt8(i)]) }
            try wal.sync()
            let segments = try wal.segments()
            #expect(segments.map(\.firstLSN) == [1, 11])
            let first = try wal.records(from: 1, limit: 5)
            #expect(first.records.count == 5)
            #expect(first.hasMore)
            let rest = try wal.records(from: first.records.last!.lsn + 1, limit: 200)
            #expect(rest.records.count == 15)
            #expect(rest.records.map(\.payload) == (5..<20).map { [UInt8($0)] })
        }
    }
}

@Suite("Streaming API")
struct StreamingTests {
    @Test(arguments: availableEngines)
    func recordStreamIsAnAsyncSequence(engine: IOEngineChoice) async throws {
        try await withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine, segmentTargetSize: 200))
            for i in 0..<30 { try wal.append(.put, payload: [UInt8(i)]) }
            try wal.sync()
            var seen: [LSN] = []
            for try await record in wal.records(from: 11) { seen.append(record.lsn) }
            #expect(seen == Array(11...30))
        }
    }

    /// A reader running beside a writer sees a prefix of the log, never a broken record.
    @Test(arguments: availableEngines)
    func replayBesideAWriterSeesAPrefix(engine: IOEngineChoice) throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, engine: engine, segmentTargetSize: 4096))
            for i in 0..<2000 {
                try wal.append(.put, tenant: UInt32(i), payload: [UInt8](repeating: UInt8(i & 0xFF), count: i % 300))
                if i % 10 == 0 { try wal.sync() }
                if i % 250 == 0 {
                    let records = try wal.records(from: 1, limit: 100_000).records
                    #expect(records.map(\.lsn) == (0..<records.count).map { LSN($0 + 1) })
                    #expect(records.count >= i - 10)
                }
            }
        }
    }
}
