import Logging
import ArgumentParser
import Glibc

/// An error the tool reports as one line on stderr with a non-zero exit code.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func format(_ value: Double, _ decimals: Int) -> String {
    var factor = 1.0
    for _ in 0..<decimals { factor *= 10 }
    let rounded = (value * factor).rounded() / factor
    if decimals == 0 { return String(Int64(rounded)) }
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if have < decimals { text += String(repeating: "0", count: decimals - have) }
    }
    return text
}

/// `Cached:` from /proc/meminfo, in bytes (0 where unreadable).
func meminfoCachedBytes() -> Int64 {
    guard let file = fopen("/proc/meminfo", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let bytes = line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.hasPrefix("Cached:") {
            let digits = text.dropFirst("Cached:".count).filter { $0.isNumber }
            return (Int64(digits) ?? 0) * 1024
        }
    }
    return 0
}

/// Creates a fresh directory under $TMPDIR (default /tmp).
func makeTemporaryDirectory() throws -> String {
    let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    var template = Array((base + "/wal-bench-XXXXXX").utf8CString)
    guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw CLIError("cannot create a temporary directory under \(base): errno \(errno)")
    }
    return String(cString: result)
}

/// Removes a directory tree (the benchmark's own temporary directory).
func removeTree(_ path: String) {
    guard let dir = opendir(path) else { unlink(path); return }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        if name == "." || name == ".." { continue }
        let child = path + "/" + name
        if entry.pointee.d_type == UInt8(DT_DIR) { removeTree(child) } else { unlink(child) }
    }
    closedir(dir)
    rmdir(path)
}

/// The tool's logger: info and above to standard error (the library itself never bootstraps
/// logging; the tool passes this one in through the configuration).
func cliLogger() -> Logger {
    var logger = Logger(label: "wal", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = .info
    return logger
}

/// Writes dirty pages back and drops the clean page cache (root only; does nothing otherwise),
/// so that a replay measurement reads from the disk.
func dropPageCache() {
    sync()
    guard let file = fopen("/proc/sys/vm/drop_caches", "w") else { return }
    fputs("3\n", file)
    fclose(file)
}
