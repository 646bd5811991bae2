import Foundation
import Testing
@testable import WAL
@testable import WALSegments

/// Durable metadata (`setMetadata`, `metadata()`): two checksummed slots written alternately.
@Suite("Metadata")
struct MetadataTests {
    @Test("Metadata set is read back, after reopen too; nil when never set")
    func roundTrip() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(try wal.metadata() == nil)
            try wal.setMetadata(bytes("term 1, vote 2"))
            #expect(try wal.metadata() == bytes("term 1, vote 2"))
            try wal.setMetadata(bytes("term 3"))
            try wal.setMetadata([])
            #expect(try wal.metadata() == [])
            try wal.setMetadata([UInt8](repeating: 7, count: MetadataFile.maxSize))
            try wal.close()
            #expect(throws: WALError.closed) { try wal.setMetadata(bytes("late")) }
            let again = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(try again.metadata() == [UInt8](repeating: 7, count: MetadataFile.maxSize))
            #expect(try SegmentDirectory.discover(dir).count == 1, "the metadata file is not a segment")
            try again.close()
        }
    }

    @Test("More than 4 KiB is refused and changes nothing")
    func tooLarge() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            try wal.setMetadata(bytes("kept"))
            #expect(throws: WALError.payloadTooLarge(size: 4097, limit: 4096)) {
                try wal.setMetadata([UInt8](repeating: 1, count: 4097))
            }
            #expect(try wal.metadata() == bytes("kept"))
            try wal.close()
        }
    }

    /// A torn write can only hit the slot being written: the other one keeps the previous
    /// value. Both slots damaged is corruption, not silently "no metadata".
    @Test("A damaged newest slot falls back to the previous value; both damaged is an error")
    func slots() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            try wal.setMetadata(bytes("first"))   // generation 1, slot 0
            try wal.setMetadata(bytes("second"))  // generation 2, slot 1
            try wal.close()
            let path = dir + "/" + MetadataFile.name
            #expect(try fileSize(path) == 2 * MetadataFile.slotSize)
            try patchFile(path, at: MetadataFile.slotSize + MetadataFile.headerSize + 2, with: [0xFF])
            let reopened = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(try reopened.metadata() == bytes("first"))
            try reopened.setMetadata(bytes("third"))  // goes into the damaged slot
            #expect(try reopened.metadata() == bytes("third"))
            try reopened.close()
            try patchFile(path, at: 0, with: [0])
            try patchFile(path, at: MetadataFile.slotSize, with: [0])
            let broken = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(throws: WALError.self) { try broken.metadata() }
            try broken.close()
        }
    }

    @Test("Encrypted with the WAL's key: no plaintext on disk, the key is needed to read it")
    func encrypted() throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir)
            let key = EncryptionKey.random(id: 4)
            configuration.encryption = KeyRing(current: key)
            let wal = try SegmentedWAL(configuration: configuration)
            try wal.setMetadata(bytes("secret term"))
            try wal.close()
            #expect(!(try fileBytes(dir + "/" + MetadataFile.name)).containsSubsequence(bytes("secret term")))
            let reopened = try SegmentedWAL(configuration: configuration)
            #expect(try reopened.metadata() == bytes("secret term"))
            try reopened.close()
            var other = configuration
            other.encryption = KeyRing(current: .random(id: 5))
            let wrong = try SegmentedWAL(configuration: other)
            #expect(throws: WALError.unknownKey(id: 4, segment: MetadataFile.name)) { try wrong.metadata() }
            try wrong.close()
        }
    }

    @Test("A failed metadata sync is sticky: no later metadata write is acknowledged")
    func failedSyncIsSticky() throws {
        try withTemporaryDirectory { dir in
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            try wal.setMetadata(bytes("one"))
            let handlers = FaultHooks.Handlers(error: { operation, path in
                operation == "fdatasync" && path.hasSuffix(MetadataFile.name) ? EIO : nil
            })
            FaultHooks.shared.with(dir, handlers) {
                #expect(throws: WALError.io(operation: "fdatasync", errno: EIO, path: dir + "/" + MetadataFile.name)) {
                    try wal.setMetadata(bytes("two"))
                }
            }
            #expect(throws: WALError.failed(.io(operation: "fdatasync", errno: EIO, path: dir + "/" + MetadataFile.name))) {
                try wal.setMetadata(bytes("three"))
            }
            try wal.close()
        }
    }

    /// Every crash state around every metadata write (sector-granular model, both unit modes):
    /// the value read is the last acknowledged one or the one being written, whole.
    @Test("Every crash state reads the last acknowledged metadata or a newer one, never torn",
          arguments: CrashStateModel.Unit.allCases)
    func crashStates(unit: CrashStateModel.Unit) throws {
        try withTemporaryDirectory { root in
            let directory = root + "/wal"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let model = CrashStateModel()
            let configuration = testConfiguration(directory, engine: .posix)
            let values = (0..<6).map { index in taggedPayload(writer: 3, sequence: index, size: [10, 3000, 600, 4096, 1, 900][index]) }
            try FaultHooks.shared.with(directory, model.handlers) {
                let wal = try SegmentedWAL(configuration: configuration)
                for (index, value) in values.enumerated() {
                    try wal.setMetadata(value)
                    model.acknowledge(LSN(index + 1))  // value `index` is acknowledged
                }
                try wal.close()
            }
            var states = 0
            var problems: [String] = []
            for disk in model.moments() {
                let choices = disk.choices(unit: unit)
                #expect(choices.count <= CrashStateTests.exhaustiveLimit)
                for state in choices.all() {
                    states += 1
                    try withImageDirectory { image in
                        _ = try disk.materialise(state, of: choices, unit: unit, source: directory, target: image)
                        var reopen = configuration
                        reopen.directory = image
                        do throws(WALError) {
                            let wal = try SegmentedWAL(configuration: reopen)
                            let read = try wal.metadata()
                            let acknowledged = Int(disk.acknowledged)  // values[0..<acknowledged] returned
                            // The last acknowledged value, or the one being written (the next).
                            let allowed: [[UInt8]?] = (acknowledged == 0 ? [nil] : [values[acknowledged - 1]])
                                + (acknowledged < values.count ? [values[acknowledged]] : [])
                            if !allowed.contains(where: { $0 == read }) {
                                problems.append("read \(read?.count ?? -1) bytes after \(acknowledged) acknowledged writes")
                            }
                            try wal.close()
                        } catch {
                            problems.append("\(error)")
                        }
                    }
                }
            }
            print("metadata crash states [\(unit)]: \(states) states, problems = \(problems.count)")
            #expect(states > 20)
            #expect(problems.isEmpty, "\(problems.prefix(5))")
        }
    }
}
