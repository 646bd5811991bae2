import Crypto
import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALIO

/// A fresh directory under `base` — by default /tmp (ext4 on these machines, so O_DIRECT
/// works) — removed afterwards.
func withTemporaryDirectory<T>(in base: String = "/tmp", _ body: (String) throws -> T) throws -> T {
    var template = Array("\(base)/swift-wal-test-XXXXXX".utf8CString)
    let path = try template.withUnsafeMutableBufferPointer { buffer -> String in
        guard let result = mkdtemp(buffer.baseAddress!) else { throw POSIXError(.init(rawValue: errno)!) }
        return String(cString: result)
    }
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// The same, for async test bodies.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    var template = Array("/tmp/swift-wal-test-XXXXXX".utf8CString)
    let path = try template.withUnsafeMutableBufferPointer { buffer -> String in
        guard let result = mkdtemp(buffer.baseAddress!) else { throw POSIXError(.init(rawValue: errno)!) }
        return String(cString: result)
    }
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A configuration for tests: small buffers so that flushes and rollovers happen often.
func testConfiguration(_ directory: String, engine: IOEngineChoice = .automatic, segmentTargetSize: Int64 = 64 << 20,
                       directIO: DirectIOPolicy = .automatic) -> WALConfiguration {
    var configuration = WALConfiguration(directory: directory)
    configuration.segmentTargetSize = segmentTargetSize
    configuration.directIO = directIO
    configuration.engine = engine
    return configuration
}

/// Every record of a WAL directory, read without opening it for writing.
func replayAll(_ directory: String, from lsn: LSN = 1, keyRing: KeyRing? = nil) throws -> [WALRecord] {
    var records: [WALRecord] = []
    var stream = SegmentedWAL.records(in: directory, from: lsn, keyRing: keyRing)
    while let record = try stream.next() { records.append(record) }
    return records
}

/// The records read before replay threw, and what it threw (nil when it did not).
func replayUntilError(_ directory: String, recordTypes: Set<RecordType> = RecordType.seedTypes,
                      keyRing: KeyRing? = nil, requirePlaintext: Bool = false)
    -> (records: [WALRecord], error: WALError?) {
    var records: [WALRecord] = []
    var stream = SegmentedWAL.records(in: directory, from: 1, recordTypes: recordTypes, keyRing: keyRing,
                                      requirePlaintext: requirePlaintext)
    do {
        while let record = try stream.next() { records.append(record) }
        return (records, nil)
    } catch {
        return (records, error)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce from a seed.
func randomPayload(count: Int, using rng: inout SplitMix64) -> [UInt8] {
    var payload = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        var word = rng.next()
        for _ in 0..<8 where index < count {
            payload[index] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            index += 1
        }
    }
    return payload
}

/// Segment files of a directory, oldest first.
func segmentPaths(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { $0.hasPrefix("wal-") && $0.hasSuffix(".seg") }
        .sorted()
        .map { directory + "/" + $0 }
}

func fileBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Overwrites `count` bytes at `offset` of a file, in place.
func patchFile(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
    var contents = try fileBytes(path)
    contents.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    try writeFile(path, contents)
}

func truncateFile(_ path: String, to length: Int) throws {
    #expect(truncate(path, off_t(length)) == 0)
}

func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
}

/// The engines this machine can run: POSIX always, io_uring unless the kernel (or a seccomp
/// filter, see scripts/without-io-uring) refuses it. Engine-dependent tests run once per engine.
let availableEngines: [IOEngineChoice] = {
    guard let engine = try? IOUringEngine() else { return [.posix] }
    engine.shutdown()
    return [.ioUring, .posix]
}()

/// An executable product (`wal`, `wal-crash`) built next to the test bundle.
func builtProduct(_ name: String) -> URL {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name)
}

/// Runs a built product to completion: its exit status, standard output and standard error.
func runProduct(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = builtProduct(name)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Read both pipes to the end before waiting, so a large output cannot block the child.
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A value behind a lock that escaping closures and tasks can share (a `Mutex` is not copyable).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// A payload naming its writer and sequence number, so replay can check who wrote what.
func taggedPayload(writer: Int, sequence: Int, size: Int = 24) -> [UInt8] {
    var payload = Array("w\(writer)-s\(sequence)|".utf8)
    while payload.count < size { payload.append(UInt8(truncatingIfNeeded: writer &* 31 &+ sequence &+ payload.count)) }
    return payload
}

/// Runs `body(index)` on `count` threads of their own at once (Dispatch's concurrentPerform
/// would run only as many at a time as there are cores), and waits for all of them.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchGroup()
    for index in 0..<count {
        done.enter()
        let thread = Thread {
            body(index)
            done.leave()
        }
        thread.start()
    }
    done.wait()
}

/// Runs a program and returns its exit status.
@discardableResult
func run(_ path: String, _ arguments: String...) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
}
