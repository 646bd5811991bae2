import Foundation
import Testing
@testable import WAL

/// The shared vectors (`Tests/WALTests/Vectors`, copied from `../shared/vectors`): each folder
/// is a WAL directory written by the seed (or damaged on purpose) with a `manifest.json`
/// saying what a correct reader returns.
@Suite("Shared vectors")
struct VectorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors").path

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
    }

    struct ExpectedRecord {
        var lsn: LSN
        var type: UInt16
        var tenant: UInt32
        var vshard: UInt16
        var length: Int
        var sha256: String
        var payloadHex: String?
        var encrypted: Bool

        init(_ json: [String: Any]) {
            lsn = (json["lsn"] as! NSNumber).uint64Value
            type = (json["type"] as! NSNumber).uint16Value
            tenant = (json["tenant"] as! NSNumber).uint32Value
            vshard = (json["vshard"] as! NSNumber).uint16Value
            length = (json["len"] as! NSNumber).intValue
            sha256 = json["sha256"] as! String
            payloadHex = json["payload_hex"] as? String
            encrypted = (json["encrypted"] as? Bool) ?? false
        }

        /// Compares a replayed record with the manifest. Encrypted records come back as
        /// stored (ciphertext ‖ 16-byte tag) until a key ring is configured.
        func check(_ record: WALRecord, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(record.lsn == lsn, sourceLocation: sourceLocation)
            #expect(record.type.rawValue == type, "LSN \(lsn)", sourceLocation: sourceLocation)
            #expect(record.tenant == tenant, "LSN \(lsn)", sourceLocation: sourceLocation)
            #expect(record.vshard == vshard, "LSN \(lsn)", sourceLocation: sourceLocation)
            #expect(record.isEncrypted == encrypted, "LSN \(lsn)", sourceLocation: sourceLocation)
            if encrypted {
                #expect(record.payload.count == length + 16, "LSN \(lsn)", sourceLocation: sourceLocation)
            } else {
                #expect(record.payload.count == length, "LSN \(lsn)", sourceLocation: sourceLocation)
                #expect(sha256Hex(record.payload) == sha256, "LSN \(lsn)", sourceLocation: sourceLocation)
                if let payloadHex {
                    #expect(record.payload.map { String(format: "%02x", $0) }.joined() == payloadHex,
                            sourceLocation: sourceLocation)
                }
            }
        }
    }

    static func manifest(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/" + name + "/manifest.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Copies a vector's segments into a temporary WAL directory: opening a WAL repairs
    /// files, and the tests run as root, so the originals must never be opened in place.
    static func copy(_ name: String, to directory: String) throws {
        let source: String = root + "/" + name
        let files: [String] = try FileManager.default.contentsOfDirectory(atPath: source)
        for file in files where file.hasSuffix(".seg") {
            let from: String = source + "/" + file
            let to: String = directory + "/" + file
            try FileManager.default.copyItem(atPath: from, toPath: to)
        }
    }

    @Test("withNextRecord lends exactly the records next() returns, and the same error", arguments: names)
    func borrowedRecordsMatch(name: String) throws {
        let (records, error) = replayUntilError(Self.root + "/" + name)
        var stream = SegmentedWAL.records(in: Self.root + "/" + name)
        var lent: [WALRecord] = []
        do {
            while let record = try stream.withNextRecord({ view in
                WALRecord(lsn: view.lsn, type: view.type, tenant: view.tenant, vshard: view.vshard,
                          payload: Array(view.payload), isEncrypted: view.isEncrypted)
            }) {
                lent.append(record)
            }
            #expect(error == nil)
        } catch let thrown as WALError {
            #expect(thrown == error)
        }
        #expect(lent == records)
    }

    @Test func everyVectorFolderIsPresent() {
        let expected: [String] = ["bad-crc-tail", "basic", "corrupt-sealed-segment", "encrypted", "lsn-gap",
                                  "multi-segment", "torn-tail", "unknown-required-type", "zero-padded-flushes"]
        #expect(Self.names == expected)
    }

    @Test(arguments: names)
    func replayMatchesManifest(name: String) throws {
        let manifest = try Self.manifest(name)
        try withTemporaryDirectory { dir in
            try Self.copy(name, to: dir)
            let (records, error) = replayUntilError(dir)
            if manifest["expect"] as? String == "ok" {
                #expect(error == nil, "\(name): \(String(describing: error))")
                let expected = (manifest["records"] as! [[String: Any]]).map(ExpectedRecord.init)
                #expect(records.count == expected.count, "\(name)")
                for (record, want) in zip(records, expected) { want.check(record) }
            } else {
                let expected = (manifest["records_before_error"] as! [[String: Any]]).map(ExpectedRecord.init)
                #expect(records.count == expected.count, "\(name)")
                for (record, want) in zip(records, expected) { want.check(record) }
                let error = try #require(error, "\(name) must fail")
                switch manifest["error"] as! String {
                case "corruption":
                    guard case .corruption(let segment, let offset, let lsn, _) = error else {
                        Issue.record("\(name): expected corruption, got \(error)"); return
                    }
                    #expect(segment == manifest["corrupt_segment"] as? String)
                    #expect(lsn == (manifest["corrupt_lsn"] as! NSNumber).uint64Value)
                    #expect(offset > 0)
                case "lsn-gap":
                    guard case .lsnGap(_, let expectedLSN, let found) = error else {
                        Issue.record("\(name): expected an LSN gap, got \(error)"); return
                    }
                    #expect(expectedLSN == (manifest["missing_lsn"] as! NSNumber).uint64Value)
                    #expect(found > expectedLSN)
                case "unknown-required-record-type":
                    guard case .unknownRequiredRecordType(let type, let lsn, _) = error else {
                        Issue.record("\(name): expected an unknown required type, got \(error)"); return
                    }
                    #expect(type == (manifest["record_type"] as! NSNumber).uint16Value)
                    #expect(lsn == (manifest["lsn"] as! NSNumber).uint64Value)
                default:
                    Issue.record("\(name): unknown error kind in manifest")
                }
                #expect(!error.description.isEmpty)
            }
        }
    }

    /// Opening a valid vector for writing resumes at `next_lsn`; a new record follows the old ones.
    @Test(arguments: names)
    func reopenAndAppendContinuesAtNextLSN(name: String) throws {
        let manifest = try Self.manifest(name)
        guard manifest["expect"] as? String == "ok" else { return }
        let nextLSN = (manifest["next_lsn"] as! NSNumber).uint64Value
        let expected = (manifest["records"] as! [[String: Any]]).map(ExpectedRecord.init)
        for directIO in [DirectIOPolicy.automatic, .disabled] {
            try withTemporaryDirectory { dir in
                try Self.copy(name, to: dir)
                do {
                    let wal = try SegmentedWAL(configuration: testConfiguration(dir, directIO: directIO))
                    #expect(wal.nextLSN == nextLSN, "\(name)")
                    #expect(try wal.append(.put, tenant: 7, vshard: 7, payload: bytes("after")) == nextLSN)
                    try wal.sync()
                    #expect(try wal.append(.delete, tenant: 7, vshard: 7, payload: bytes("after2")) == nextLSN + 1)
                    try wal.close()
                }
                let records = try replayAll(dir)
                #expect(records.count == expected.count + 2, "\(name)")
                for (record, want) in zip(records, expected) { want.check(record) }
                #expect(records.suffix(2).map(\.payload) == [bytes("after"), bytes("after2")])
                #expect(records.suffix(2).map(\.lsn) == [nextLSN, nextLSN + 1])
            }
        }
    }
}
