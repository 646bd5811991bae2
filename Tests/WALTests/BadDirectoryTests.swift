import Foundation
import Testing
@testable import WAL

/// What a WAL directory can hold besides segments, and a second writer: every case ends in a
/// clear ``WALError`` or is ignored by rule — never a crash, a hang or a silently lost segment.
@Suite("Bad directory contents")
struct BadDirectoryTests {
    /// A log of 30 records in 3 segments (LSNs 1, 11, 21).
    private func makeLog(_ dir: String) throws {
        try CorruptionTests.makeLog(dir, count: 30, perSegment: 10)
    }

    @Test("Foreign names of any kind are ignored (lost+found, backups, FIFOs, links)")
    func foreignEntriesAreIgnored() throws {
        try withTemporaryDirectory { dir in
            try makeLog(dir)
            try FileManager.default.createDirectory(atPath: dir + "/lost+found", withIntermediateDirectories: false)
            try writeFile(dir + "/wal-00000000000000000011.seg~", [1, 2, 3])
            #expect(mkfifo(dir + "/notes.fifo", 0o644) == 0)
            #expect(symlink("/nonexistent", dir + "/dangling") == 0)
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(try replayAll(dir).map(\.lsn) == Array(1...30))
            try wal.commit(.put, payload: [1])
            try wal.close()
        }
    }

    @Test("An entry named like a segment that is not a regular file is an error, for the writer and the reader",
          arguments: ["directory", "fifo", "dangling link", "socket"])
    func segmentNamedNonFileIsAnError(kind: String) throws {
        try withTemporaryDirectory { dir in
            try makeLog(dir)
            let path = dir + "/wal-00000000000000000031.seg"
            switch kind {
            case "directory": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            case "fifo": #expect(mkfifo(path, 0o644) == 0)
            case "dangling link": #expect(symlink(dir + "/missing.seg", path) == 0)
            default:
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &address.sun_path) { raw in
                    _ = path.utf8CString.withUnsafeBytes { raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(raw.count))) }
                }
                let bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                #expect(bound == 0)
                close(fd)
            }
            let expectedKind = ["directory": "a directory", "fifo": "a FIFO", "dangling link": "a dangling symbolic link",
                                "socket": "a socket"][kind]!
            #expect(throws: WALError.notASegmentFile(path: path, kind: expectedKind)) {
                try SegmentedWAL(configuration: testConfiguration(dir))
            }
            #expect(replayUntilError(dir).error == .notASegmentFile(path: path, kind: expectedKind))
        }
    }

    @Test("A symbolic link to a segment is followed")
    func symlinkToASegmentIsFollowed() throws {
        try withTemporaryDirectory { dir in
            try makeLog(dir)
            let moved = dir + "/elsewhere.bin"
            #expect(rename(dir + "/wal-00000000000000000011.seg", moved) == 0)
            #expect(symlink(moved, dir + "/wal-00000000000000000011.seg") == 0)
            #expect(try replayAll(dir).map(\.lsn) == Array(1...30))
        }
    }

    @Test("A symbolic link loop named like a segment is an I/O error naming it")
    func symlinkLoop() throws {
        try withTemporaryDirectory { dir in
            try makeLog(dir)
            let path = dir + "/wal-00000000000000000031.seg"
            #expect(symlink(path, path) == 0)
            #expect(throws: WALError.io(operation: "stat", errno: ELOOP, path: path)) {
                try SegmentedWAL(configuration: testConfiguration(dir))
            }
        }
    }

    @Test("A segment that cannot be opened (permission denied) is an I/O error naming it")
    func permissionDenied() throws {
        try withTemporaryDirectory { dir in
            try makeLog(dir)
            let path = dir + "/wal-00000000000000000021.seg"
            #expect(chmod(path, 0) == 0)
            // Root ignores file modes; the kernel's EACCES is injected there instead.
            let inject = FaultHooks.Handlers(error: { operation, target in
                geteuid() == 0 && operation == "open" && target == path ? EACCES : nil
            })
            FaultHooks.shared.with(dir, inject) {
                #expect(throws: WALError.io(operation: "open", errno: EACCES, path: path)) {
                    try SegmentedWAL(configuration: testConfiguration(dir))
                }
                #expect(replayUntilError(dir).error == .io(operation: "open", errno: EACCES, path: path))
            }
        }
    }

    @Test("A WAL directory whose parent is a file is an I/O error (ENOTDIR)")
    func parentIsAFile() throws {
        try withTemporaryDirectory { dir in
            try writeFile(dir + "/file", [1])
            #expect(throws: WALError.io(operation: "stat", errno: ENOTDIR, path: dir + "/file/wal")) {
                try SegmentedWAL(configuration: testConfiguration(dir + "/file/wal"))
            }
        }
    }

    @Test("A second writer on the same directory fails with directoryLocked; closing releases the lock")
    func secondWriterInThisProcess() throws {
        try withTemporaryDirectory { dir in
            let first = try SegmentedWAL(configuration: testConfiguration(dir))
            #expect(throws: WALError.directoryLocked(path: dir)) {
                try SegmentedWAL(configuration: testConfiguration(dir))
            }
            // Readers take no lock.
            try first.commit(.put, payload: [1])
            #expect(try replayAll(dir).count == 1)
            try first.close()
            let second = try SegmentedWAL(configuration: testConfiguration(dir))
            try second.close()
        }
    }

    @Test("Close releases the lock even while another reference to its descriptor lives (a child between fork and exec)")
    func closeReleasesTheLockDespiteACopiedDescriptor() throws {
        try withTemporaryDirectory { dir in
            let first = try SegmentedWAL(configuration: testConfiguration(dir))
            // A forked child shares the lock's open file description until it execs; dup()
            // makes the same kind of second reference in this process.
            let copies = try descriptors(openOn: dir).map { dup($0) }
            #expect(!copies.isEmpty, "the WAL holds its directory open")
            defer { for copy in copies { close(copy) } }
            try first.close()
            let second = try SegmentedWAL(configuration: testConfiguration(dir))
            try second.close()
        }
    }

    /// This process's descriptors that refer to `path`.
    private func descriptors(openOn path: String) throws -> [Int32] {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        return try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { name in
            guard let fd = Int32(name),
                  let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)"),
                  link == target else { return nil }
            return fd
        }
    }

    @Test("A writer in another process holds the lock until it dies (even by SIGKILL)")
    func secondWriterInAnotherProcess() throws {
        try withTemporaryDirectory { dir in
            let binary = builtProduct("wal-crash")
            guard FileManager.default.isExecutableFile(atPath: binary.path) else {
                Issue.record("wal-crash is not built next to the test bundle (\(binary.path)); run `swift build` first")
                return
            }
            let child = Process()
            child.executableURL = binary
            child.arguments = ["child", "--directory", dir, "--cycle", "0", "--seed", "1", "--engine", "posix"]
            let output = Pipe()
            child.standardOutput = output
            try child.run()
            // Wait for "ready": the child has the WAL open.
            let ready = output.fileHandleForReading.availableData
            #expect(String(decoding: ready, as: UTF8.self).hasPrefix("ready"))
            #expect(throws: WALError.directoryLocked(path: dir)) {
                try SegmentedWAL(configuration: testConfiguration(dir))
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            try wal.close()
        }
    }
}
