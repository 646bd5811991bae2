import Foundation
import Logging
import Synchronization
import Testing
@testable import WAL
@testable import WALCrash

/// A log handler that keeps every message, for asserting what the library logs.
final class CapturingLogHandler: LogHandler, Sendable {
    let messages = Mutex<[(Logger.Level, String)]>([])
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }
    func log(event: LogEvent) {
        messages.withLock { $0.append((event.level, "\(event.message)")) }
    }
}

@Suite("O_DIRECT policy")
struct DirectIOTests {
    /// ramfs refuses O_DIRECT (EINVAL). tmpfs would be the usual example, but since Linux 6.6
    /// tmpfs accepts O_DIRECT, and these machines run a newer kernel.
    static let canMount = geteuid() == 0

    /// The type of the file system holding `path`, from the longest matching mount point.
    static func fileSystemType(of path: String) -> String? {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        var best: (point: String, type: String)?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { continue }
            let point = String(fields[1])
            let matches = path == point || path.hasPrefix(point == "/" ? "/" : point + "/")
            if matches && point.count >= (best?.point.count ?? -1) { best = (point, String(fields[2])) }
        }
        return best?.type
    }

    /// Runs `body` with a fresh ramfs mounted in a temporary directory (needs root).
    static func withRamfs(_ body: (String) throws -> Void) throws {
        try withTemporaryDirectory { dir in
            let point = dir + "/ramfs"
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: false)
            guard mount("ramfs", point, "ramfs", 0, nil) == 0 else {
                let code = errno
                withKnownIssue("cannot mount ramfs here (errno \(code)); O_DIRECT fallback not exercised") {
                    throw POSIXError(.init(rawValue: code) ?? .EPERM)
                }
                return
            }
            defer { umount(point) }
            try body(point + "/wal")
        }
    }

    @Test(.enabled(if: canMount, "mounting ramfs needs root"))
    func automaticFallsBackToBufferedIOWithOneLogLine() throws {
        try Self.withRamfs { dir in
            let handler = CapturingLogHandler()
            var configuration = testConfiguration(dir, segmentTargetSize: 1000)
            configuration.logger = Logger(label: "test", factory: { _ in handler })
            let wal = try SegmentedWAL(configuration: configuration)
            #expect(!wal.isDirectIO)
            for i in 0..<50 { try wal.append(.put, payload: [UInt8](repeating: UInt8(i), count: 100)); try wal.sync() }
            #expect(try wal.segments().count > 3)
            try wal.close()
            let fallbacks = handler.messages.withLock { $0.filter { $0.1.contains("O_DIRECT") } }
            #expect(fallbacks.count == 1, "one line for the whole WAL, not one per segment")
            #expect(fallbacks.first?.0 == .info)
            #expect(try replayAll(dir).count == 50)
            // Reopening falls back again (one line) and continues.
            let reopened = try SegmentedWAL(configuration: configuration)
            #expect(reopened.nextLSN == 51 && !reopened.isDirectIO)
        }
    }

    @Test(.enabled(if: canMount, "mounting ramfs needs root"))
    func requiredDirectIOThrowsWhereRefused() throws {
        try Self.withRamfs { dir in
            #expect(throws: WALError.directIOUnsupported(path: dir + "/wal-00000000000000000001.seg")) {
                try SegmentedWAL(configuration: testConfiguration(dir, directIO: .required))
            }
            #expect((try? segmentPaths(dir))?.isEmpty == true, "the refused segment is not left behind")
        }
    }

    @Test func directIOIsOnByDefaultOnExt4() throws {
        try withTemporaryDirectory { dir in
            try #require(Self.fileSystemType(of: dir) == "ext4", "/tmp is expected to be ext4 on these machines")
            let wal = try SegmentedWAL(configuration: WALConfiguration(directory: dir))
            #expect(wal.isDirectIO)
            let buffered = try SegmentedWAL(configuration: testConfiguration(dir + "/b", directIO: .disabled))
            #expect(!buffered.isDirectIO)
        }
    }

    /// Files written through O_DIRECT and through the page cache are byte-identical.
    @Test func directAndBufferedWritesProduceIdenticalFiles() throws {
        try withTemporaryDirectory { dir in
            for policy in [DirectIOPolicy.required, .disabled] {
                let path = dir + "/\(policy)"
                let wal = try SegmentedWAL(configuration: testConfiguration(path, segmentTargetSize: 50_000, directIO: policy))
                var rng = SplitMix64(seed: 5)
                for i in 0..<200 {
                    try wal.append(.put, tenant: UInt32(i), payload: randomPayload(count: Int.random(in: 0...2000, using: &rng), using: &rng))
                    if i % 9 == 0 { try wal.sync() }
                }
                try wal.close()
            }
            let direct = try segmentPaths(dir + "/required")
            let buffered = try segmentPaths(dir + "/disabled")
            #expect(direct.count == buffered.count && direct.count > 2)
            for (a, b) in zip(direct, buffered) {
                #expect(try fileBytes(a) == fileBytes(b), "\(a)")
            }
        }
    }
}
