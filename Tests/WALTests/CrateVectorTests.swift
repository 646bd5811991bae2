import Foundation
import Testing
@testable import WAL
@testable import WALCrash

/// Logs the real `nodedb-wal` crate wrote (`Tests/WALTests/CrateVectors`, copied unchanged from
/// `../shared/vectors/nodedb-crate`; see its README): O_DIRECT logs whose flushes are padded to
/// 4 KiB with leftovers of earlier flushes, buffered logs (one reopened mid-write, one with
/// unknown optional types), an encrypted log, and the crate's version-1 format.
///
/// Each `manifest.jsonl` line is a record the crate wrote: a correct reader returns exactly
/// those (less unknown optional types), and opening the log for writing keeps every one.
@Suite("Logs the nodedb-wal crate wrote")
struct CrateVectorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("CrateVectors").path

    static let folders = ["v1-odirect-segments", "v2-buffered-reopen", "v2-buffered-unknown-types", "v2-encrypted",
                          "v2-odirect-one-segment", "v2-odirect-segments"]

    struct Line {
        var lsn: LSN
        var type: UInt16
        var tenant: UInt32
        var vshard: UInt16
        var length: Int
        var sha256: String
    }

    static func manifest(_ folder: String) throws -> [Line] {
        let text = try String(contentsOfFile: root + "/" + folder + "/manifest.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return Line(lsn: (json["lsn"] as! NSNumber).uint64Value, type: (json["type"] as! NSNumber).uint16Value,
                        tenant: (json["tenant"] as! NSNumber).uint32Value, vshard: (json["vshard"] as! NSNumber).uint16Value,
                        length: (json["len"] as! NSNumber).intValue, sha256: json["sha256"] as! String)
        }
    }

    /// What a reader returns: every line but unknown types without the required bit.
    static func expected(_ folder: String) throws -> [Line] {
        try manifest(folder).filter { RecordType.seedTypes.contains(RecordType(rawValue: $0.type)) || $0.type & 0x8000 != 0 }
    }

    /// The key ring for the encrypted log: its key, and the epoch the crate printed (the crate
    /// stores it nowhere; the nonce is the epoch's 4 bytes in the order printed, then the LSN).
    static func keyRing(_ folder: String) throws -> KeyRing? {
        let directory = root + "/" + folder
        guard FileManager.default.fileExists(atPath: directory + "/key.bin") else { return nil }
        let epoch = try String(contentsOfFile: directory + "/epoch.txt", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return KeyRing(current: try EncryptionKey(id: 1, contentsOfFile: directory + "/key.bin"), seedEpoch: hexBytes(epoch))
    }

    /// Copies the folder's `wal/` (segments and the crate's other files alike) to `directory`:
    /// the originals are never opened for writing.
    static func copy(_ folder: String, to directory: String) throws {
        let source = root + "/" + folder + "/wal"
        for file in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: directory + "/" + file)
        }
    }

    static func check(_ records: [WALRecord], against lines: [Line], _ folder: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(records.count == lines.count, "\(folder): \(records.count) records, manifest \(lines.count)",
                sourceLocation: sourceLocation)
        for (record, line) in zip(records, lines) {
            let same = record.lsn == line.lsn && record.type.rawValue == line.type && record.tenant == line.tenant
                && record.vshard == line.vshard && record.payload.count == line.length && sha256Hex(record.payload) == line.sha256
            #expect(same, "\(folder): LSN \(record.lsn) differs from the manifest's LSN \(line.lsn)", sourceLocation: sourceLocation)
            if !same { return }
        }
    }

    @Test("replay returns exactly the manifest's records", arguments: folders)
    func replay(folder: String) throws {
        let (records, error) = replayUntilError(Self.root + "/" + folder + "/wal", keyRing: try Self.keyRing(folder))
        #expect(error == nil, "\(folder): \(String(describing: error))")
        Self.check(records, against: try Self.expected(folder), folder)
    }

    @Test("verify is clean and checks every record", arguments: folders)
    func verify(folder: String) throws {
        let report = SegmentedWAL.verify(directory: Self.root + "/" + folder + "/wal", keyRing: try Self.keyRing(folder))
        #expect(report.isClean, "\(folder): \(report.problems)")
        #expect(report.recordsChecked == (try Self.expected(folder)).count, "\(folder)")  // skipped types not counted
        let summaries = try SegmentedWAL.inspectSegments(in: Self.root + "/" + folder + "/wal")
        #expect(summaries.reduce(0) { $0 + $1.recordCount } == (try Self.manifest(folder)).count, "\(folder)")
    }

    /// Opens a copy for writing (both I/O modes): every record still reads back by replay and
    /// by point reads, the bytes of every record are where they were, and new records follow.
    @Test("opening for writing keeps every record and appends after them", arguments: folders)
    func openAppendAndReadAgain(folder: String) throws {
        let lines = try Self.manifest(folder)
        let expected = try Self.expected(folder)
        let keyRing = try Self.keyRing(folder)
        let next = lines.last!.lsn + 1
        for directIO in [DirectIOPolicy.automatic, .disabled] {
            try withTemporaryDirectory { dir in
                try Self.copy(folder, to: dir)
                let before = try Self.recordBytes(dir)
                var configuration = testConfiguration(dir, directIO: directIO)
                configuration.encryption = keyRing
                do {
                    let wal = try SegmentedWAL(configuration: configuration)
                    #expect(wal.nextLSN == next, "\(folder)")
                    // Point reads, through the sparse index, in a scrambled order. They return
                    // records of unknown optional types too: the caller named their LSNs.
                    var order = Array(lines.indices)
                    var rng = SplitMix64(seed: 25)
                    order.shuffle(using: &rng)
                    for index in order.prefix(60) {
                        let record = try #require(try wal.record(at: lines[index].lsn), "\(folder) LSN \(lines[index].lsn)")
                        Self.check([record], against: [lines[index]], folder)
                    }
                    Self.check(try wal.records(from: 1, through: next - 1), against: lines, folder)
                    #expect(try wal.commit(.put, tenant: 5, vshard: 5, payload: bytes("after the crate")) == next)
                    #expect(try wal.append(.delete, tenant: 5, vshard: 5, payload: bytes("and one more")) == next + 1)
                    try wal.close()
                }
                // Every byte of every record the crate wrote is where it was.
                let after = try Self.recordBytes(dir)
                for (name, prefix) in before {
                    #expect(after[name].map { $0.starts(with: prefix) } == true, "\(folder): \(name) changed")
                }
                let records = try replayAll(dir, keyRing: keyRing)
                Self.check(Array(records.dropLast(2)), against: expected, folder)
                #expect(records.suffix(2).map(\.lsn) == [next, next + 1], "\(folder)")
                #expect(records.suffix(2).map(\.payload) == [bytes("after the crate"), bytes("and one more")], "\(folder)")
                #expect(SegmentedWAL.verify(directory: dir, keyRing: keyRing).isClean, "\(folder)")
            }
        }
    }

    /// Each segment's bytes up to the end of its last record (the crate's padding after it is
    /// the one thing a writer may cut).
    static func recordBytes(_ directory: String) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for summary in try SegmentedWAL.inspectSegments(in: directory) {
            let path = summary.segment.path
            result[summary.segment.name] = Array(try fileBytes(path).prefix(Int(summary.dataEnd)))
        }
        return result
    }

    @Test("wal dump prints every record and wal verify is clean", arguments: folders.filter { $0 != "v2-encrypted" })
    func tool(folder: String) throws {
        let directory = Self.root + "/" + folder + "/wal"
        let dump = try runProduct("wal", ["dump", directory, "--json"])
        #expect(dump.status == 0, "\(folder): \(dump.errors)")
        let lines = try dump.output.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let expected = try Self.expected(folder)
        #expect(lines.map { ($0["lsn"] as! NSNumber).uint64Value } == expected.map(\.lsn), "\(folder)")
        for (line, want) in zip(lines, expected) {
            #expect(sha256Hex(hexBytes(line["payloadHex"] as! String)) == want.sha256, "\(folder) LSN \(want.lsn)")
        }
        let verify = try runProduct("wal", ["verify", directory])
        #expect(verify.status == 0, "\(folder): \(verify.output) \(verify.errors)")
    }

    @Test func padding() throws {
        // The vectors hold what the issue describes: paddings that are not zeros, some with
        // whole CRC-valid copies of earlier records.
        let segment = try fileBytes(Self.root + "/v2-odirect-one-segment/wal/wal-00000000000000000001.seg")
        #expect(segment.count == 884_736)
        #expect(segment[16518..<20480].contains { $0 != 0 })
        #expect(Array(segment[16518..<20480]) == Array(segment[134..<(134 + 3962)]))
    }
}
