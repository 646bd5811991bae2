import Foundation
import Testing
@testable import WAL

/// The `wal` tool's reading subcommands on the shared vectors, and its maintenance
/// subcommands on copies: output, JSON and exit codes.
@Suite("wal command-line tool")
struct CLITests {
    private func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    private func keyFile(in directory: String, hex: String) throws -> String {
        let path = directory + "/vector.key"
        try writeFile(path, hexBytes(hex))
        return path
    }

    @Test("wal verify passes every clean vector and finds every damaged one, naming segment and LSN",
          arguments: VectorTests.names)
    func verifyVector(name: String) throws {
        let manifest = try VectorTests.manifest(name)
        let directory = VectorTests.root + "/" + name
        let result = try runProduct("wal", ["verify", directory, "--json"])
        let report = try #require(try json(result.output) as? [String: Any], "\(result.output) \(result.errors)")
        let problems = report["problems"] as! [[String: Any]]
        if manifest["expect"] as? String == "ok" {
            #expect(result.status == 0, "\(name): \(problems)")
            #expect(report["clean"] as? Bool == true)
            #expect(problems.isEmpty)
        } else {
            #expect(result.status == 1, "\(name)")
            #expect(report["clean"] as? Bool == false)
            let problem = try #require(problems.first, "\(name): no problem reported")
            let lsn = (problem["lsn"] as? NSNumber)?.uint64Value
            switch manifest["error"] as! String {
            case "corruption":
                #expect(problem["segment"] as? String == manifest["corrupt_segment"] as? String)
                #expect(lsn == (manifest["corrupt_lsn"] as! NSNumber).uint64Value)
                #expect(problem["offset"] != nil)
            case "lsn-gap":
                #expect(lsn == (manifest["missing_lsn"] as! NSNumber).uint64Value)
            default:
                #expect(lsn == (manifest["lsn"] as! NSNumber).uint64Value)
            }
        }
        // Readable output says the same.
        let text = try runProduct("wal", ["verify", directory])
        #expect(text.status == result.status)
        #expect(text.output.contains(manifest["expect"] as? String == "ok" ? "clean:" : "PROBLEM "))
    }

    @Test("wal verify --key-file authenticates encrypted records; a wrong key is a problem")
    func verifyWithKey() throws {
        let manifest = try VectorTests.manifest("encrypted")
        try withTemporaryDirectory { dir in
            let good = try keyFile(in: dir, hex: manifest["key_hex"] as! String)
            let epoch = manifest["epoch_hex"] as! String
            let directory = VectorTests.root + "/encrypted"
            let ok = try runProduct("wal", ["verify", directory, "--key-file", good, "--seed-epoch", epoch])
            #expect(ok.status == 0, "\(ok.output)")
            #expect(ok.output.contains("8 record(s) checked"))
            let wrong = dir + "/wrong.key"
            try writeFile(wrong, [UInt8](repeating: 7, count: 32))
            let bad = try runProduct("wal", ["verify", directory, "--key-file", wrong, "--seed-epoch", epoch])
            #expect(bad.status == 1)
            #expect(bad.output.contains("failed authentication"))
        }
    }

    @Test("wal segments lists each segment's LSN range, records and state", arguments: ["multi-segment", "encrypted", "torn-tail"])
    func segments(name: String) throws {
        let result = try runProduct("wal", ["segments", VectorTests.root + "/" + name, "--json"])
        #expect(result.status == 0)
        let object = try #require(try json(result.output) as? [String: Any])
        let rows = try #require(object["segments"] as? [[String: Any]])
        #expect(object["metadata"] as? Bool == false)
        #expect(object["pendingCut"] == nil || object["pendingCut"] is NSNull)
        let manifest = try VectorTests.manifest(name)
        let records = manifest["records"] as! [[String: Any]]
        #expect(rows.reduce(0) { $0 + ($1["records"] as! Int) } == records.count)
        #expect((rows.last?["state"] as? String) == "active")
        #expect(rows.dropLast().allSatisfy { $0["state"] as? String == "sealed" })
        #expect((rows.last?["lastLSN"] as? NSNumber)?.uint64Value == (records.last!["lsn"] as! NSNumber).uint64Value)
        if name == "multi-segment" {
            #expect(rows.map { ($0["firstLSN"] as! NSNumber).uint64Value } == [1, 11, 26])
        }
        let text = try runProduct("wal", ["segments", VectorTests.root + "/" + name])
        #expect(text.output.split(separator: "\n").count == rows.count + 1)
    }

    @Test("wal truncate --after and wal reset --to cut the log's end; segments and verify show a pending cut and metadata")
    func cutCommands() throws {
        try withTemporaryDirectory { directory in
            let wal = try SegmentedWAL(configuration: testConfiguration(directory, segmentTargetSize: 16 << 10))
            for sequence in 0..<100 { try wal.commit(.put, payload: taggedPayload(writer: 1, sequence: sequence, size: 200)) }
            try wal.setMetadata([1, 2, 3])
            try wal.close()
            let truncate = try runProduct("wal", ["truncate", directory, "--after", "40", "--json"])
            #expect(truncate.status == 0, "\(truncate.errors)")
            let truncated = try #require(try json(truncate.output) as? [String: Any])
            #expect((truncated["nextLSN"] as? NSNumber)?.uint64Value == 41)
            #expect(try replayAll(directory).map(\.lsn) == Array(1...40))
            let both = try runProduct("wal", ["truncate", directory, "--after", "4", "--before", "3"])
            #expect(both.status != 0)
            #expect(both.errors.contains("exactly one"))

            try LogCut(kind: .truncateAfter, lsn: 30).record(in: directory)
            let listed = try #require(try json(try runProduct("wal", ["segments", directory, "--json"]).output) as? [String: Any])
            let cut = try #require(listed["pendingCut"] as? [String: Any])
            #expect(cut["kind"] as? String == "truncate-after")
            #expect((cut["lsn"] as? NSNumber)?.uint64Value == 30)
            #expect(listed["metadata"] as? Bool == true)
            let text = try runProduct("wal", ["segments", directory])
            #expect(text.output.contains("pending cut: truncate-after 30"))
            let verify = try runProduct("wal", ["verify", directory])
            #expect(verify.status == 0)
            #expect(verify.output.contains("interrupted") && verify.output.contains("metadata: present"))
            #expect(verify.output.contains("30 record(s) checked"))

            let reset = try runProduct("wal", ["reset", directory, "--to", "1000", "--json"])
            #expect(reset.status == 0, "\(reset.errors)")
            #expect(((try json(reset.output) as? [String: Any])?["nextLSN"] as? NSNumber)?.uint64Value == 1001)
            #expect(try replayAll(directory).isEmpty)
            #expect(try SegmentedWAL.pendingCut(in: directory) == nil)
            let again = try SegmentedWAL(configuration: testConfiguration(directory))
            #expect(again.nextLSN == 1001)
            #expect(try again.metadata() == [1, 2, 3])
            try again.close()
        }
    }

    @Test("wal dump prints one line per record; --from, --limit and --type select", arguments: ["basic", "multi-segment"])
    func dump(name: String) throws {
        let manifest = try VectorTests.manifest(name)
        let expected = (manifest["records"] as! [[String: Any]]).map(VectorTests.ExpectedRecord.init)
        let directory = VectorTests.root + "/" + name
        let all = try runProduct("wal", ["dump", directory, "--json"])
        #expect(all.status == 0)
        let lines = try all.output.split(separator: "\n").map { try #require(try json(String($0)) as? [String: Any]) }
        #expect(lines.map { ($0["lsn"] as! NSNumber).uint64Value } == expected.map(\.lsn))
        for (line, want) in zip(lines, expected) {
            #expect(sha256Hex(hexBytes(line["payloadHex"] as! String)) == want.sha256)
            #expect((line["tenant"] as! NSNumber).uint32Value == want.tenant)
        }
        let window = try runProduct("wal", ["dump", directory, "--from", "5", "--limit", "3"])
        #expect(window.output.split(separator: "\n").map { $0.split(separator: " ").first! } == ["5", "6", "7"])
        let deletes = try runProduct("wal", ["dump", directory, "--type", "delete"])
        #expect(deletes.output.split(separator: "\n").count == expected.filter { $0.type == RecordType.delete.rawValue }.count)
    }

    @Test("wal truncate deletes sealed segments below the checkpoint; wal migrate moves a legacy file")
    func truncateAndMigrate() throws {
        try withTemporaryDirectory { dir in
            try VectorTests.copy("multi-segment", to: dir)
            let result = try runProduct("wal", ["truncate", dir, "--before", "26", "--json"])
            #expect(result.status == 0, "\(result.errors)")
            let output = try #require(try json(result.output) as? [String: Any])
            #expect(output["segmentsDeleted"] as? Int == 2)
            #expect((output["firstRetainedLSN"] as! NSNumber).uint64Value == 26)
            #expect(try replayAll(dir).map(\.lsn) == Array(26...30))
        }
        try withTemporaryDirectory { dir in
            let legacy = dir + "/legacy.wal"
            try FileManager.default.copyItem(atPath: VectorTests.root + "/basic/wal-00000000000000000001.seg", toPath: legacy)
            let result = try runProduct("wal", ["migrate", legacy, dir + "/wal"])
            #expect(result.status == 0, "\(result.errors)")
            #expect(try replayAll(dir + "/wal").count == 20)
        }
    }

    @Test("wal dump --follow prints records as another writer adds them, across rollovers")
    func dumpFollow() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir, segmentTargetSize: 8 << 10))
            for i in 0..<20 { try wal.commit(.put, payload: taggedPayload(writer: 0, sequence: i, size: 500)) }
            let process = Process()
            process.executableURL = builtProduct("wal")
            process.arguments = ["dump", dir, "--follow", "--json", "--poll-ms", "5"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            for i in 20..<200 { try wal.commit(.put, payload: taggedPayload(writer: 0, sequence: i, size: 500)) }
            // Read until all 200 lines have arrived whole (or give up after 20 s): a chunk may
            // end in the middle of a line, so count newlines, not pieces.
            var text = ""
            let deadline = Date().addingTimeInterval(20)
            let handle = output.fileHandleForReading
            while text.utf8.count(where: { $0 == UInt8(ascii: "\n") }) < 200 && Date() < deadline {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            process.terminate()
            process.waitUntilExit()
            let lsns = try text.split(separator: "\n").map { try #require(try json(String($0)) as? [String: Any])["lsn"] as! NSNumber }
            #expect(lsns.map(\.uint64Value) == Array(1...200))
            #expect(try wal.segments().count > 5)
            try wal.close()
        }
    }

    @Test("Errors go to stderr as one line with a non-zero exit code, never a stack trace")
    func errorsAreOneLine() throws {
        for arguments in [["dump", "/nonexistent/wal"], ["segments", "/nonexistent/wal"], ["truncate", "/nonexistent/wal", "--before", "5"],
                          ["dump", VectorTests.root + "/basic", "--type", "nosuchtype"], ["verify", "/tmp", "--key-file", "/nonexistent.key"]] {
            let result = try runProduct("wal", arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(!result.errors.isEmpty, "\(arguments)")
            #expect(!result.errors.contains("Fatal error") && !result.errors.contains("Stack dump"), "\(arguments): \(result.errors)")
        }
    }

    @Test("wal bench --hgrm writes the latency distribution; --json reports CPU time and the device")
    func benchHistogramAndMachineFacts() throws {
        try withTemporaryDirectory { dir in
            let hgrm = dir + "/latency.hgrm"
            let result = try runProduct("wal", ["bench", "--duration", "0.3", "--sync-every", "1", "--directory", dir + "/wal",
                                                "--hgrm", hgrm, "--json"])
            #expect(result.status == 0, "\(result.errors)")
            let report = try #require(try json(result.output) as? [String: Any])
            let commits = try #require(report["commits"] as? Int)
            #expect(commits > 0)
            #expect((report["cpuSeconds"] as? Double ?? 0) > 0)
            #expect((report["cpuMicrosPerCommit"] as? Double ?? 0) > 0)
            #expect(report.keys.contains("device"))
            if let device = report["device"] as? [String: Any] {  // null where the directory is on no block device
                #expect(device["name"] is String)
            }
            let distribution = try String(contentsOfFile: hgrm, encoding: .utf8)
            #expect(distribution.contains("Percentile"))
            #expect(distribution.contains("Total count    =") && distribution.contains("\(commits)]"))
            #expect(try runProduct("wal", ["bench", "--duration", "0.1", "--hgrm", dir + "/missing/x.hgrm"]).status != 0)
        }
    }

    @Test("wal bench --timeline writes each interval's commit latencies and each rollover as JSON lines, in time order")
    func benchTimeline() throws {
        try withTemporaryDirectory { dir in
            let file = dir + "/timeline.jsonl"
            let segment = 64 * 1024
            let result = try runProduct("wal", ["bench", "--duration", "0.5", "--sync-every", "1", "--record-size", "4000",
                                                "--segment-size", "\(segment)", "--directory", dir + "/wal",
                                                "--timeline", file, "--timeline-interval", "50", "--json"])
            #expect(result.status == 0, "\(result.errors)")
            let report = try #require(try json(result.output) as? [String: Any])
            let commits = try #require(report["commits"] as? Int)
            let records = try #require(report["records"] as? Int)
            #expect(commits > 0)
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
                .map { try #require(try json(String($0)) as? [String: Any]) }
            let intervals = lines.filter { $0["kind"] as? String == "interval" }
            let rollovers = lines.filter { $0["kind"] as? String == "rollover" }
            #expect(intervals.count + rollovers.count == lines.count)
            // 0.5 s in 50 ms intervals (the last commits return a little after the deadline).
            #expect(intervals.count >= 10 && intervals.count <= 40, "\(intervals.count) intervals")
            #expect(intervals.reduce(0) { $0 + ($1["commits"] as? Int ?? -1) } == commits)
            var previousEnd = 0.0
            for interval in intervals {
                let at = try #require(interval["at"] as? Double), end = try #require(interval["end"] as? Double)
                #expect(abs(at - previousEnd) < 1e-9 && end > at && end - at <= 0.050 + 1e-9, "\(interval)")
                previousEnd = end
                if interval["commits"] as? Int ?? 0 > 0 {
                    let p50 = try #require(interval["p50"] as? Int), p99 = try #require(interval["p99"] as? Int)
                    let max = try #require(interval["max"] as? Int)
                    #expect(p50 <= p99 && p99 <= max, "\(interval)")
                } else {
                    #expect(interval["p50"] == nil && interval["max"] == nil, "\(interval)")
                }
            }
            let moments = lines.map { $0["at"] as? Double ?? -1 }
            #expect(moments == moments.sorted() && moments.first == 0)
            // Each sealed segment reaches the target size (with its header) and less than one record more.
            let bytes = records * (4000 + 30)
            #expect(rollovers.count <= bytes / (segment - 4096) && rollovers.count >= bytes / (segment + 4030) - 1,
                    "\(rollovers.count) rollovers for \(bytes) bytes")
            #expect(rollovers.count > 0)
            #expect(try runProduct("wal", ["bench", "--duration", "0.1", "--timeline", dir + "/missing/t.jsonl"]).status != 0)
            #expect(try runProduct("wal", ["bench", "--duration", "0.1", "--timeline", file, "--timeline-interval", "0"]).status != 0)
        }
    }
}
