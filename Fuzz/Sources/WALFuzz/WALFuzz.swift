import Glibc
import WAL

/// libFuzzer entry point: one input is turned into a WAL directory of one or two segments,
/// which is then replayed read-only and, when the mode byte says so, opened for writing
/// (recovery cuts a torn tail) and replayed again.
///
/// Input layout: byte 0 = mode (bit 0: split into two segments, bit 1: also open for writing,
/// bit 2: replay with the `encrypted` vector's key ring, bit 3: repair the CRC of every record
/// header found, so that mutations of LSNs, types, lengths and payloads get past the checksum
/// and reach the rules behind it); bytes 1–2 = split position
/// (little-endian, modulo the data length); byte 3 = the second segment's first LSN − 2; the
/// rest is segment data. Inputs shorter than 4 bytes are one segment of raw data.
///
/// Every outcome is a record or a ``WALError``: a crash, a hang (libFuzzer's -timeout), or an
/// allocation larger than the limit (-malloc_limit_mb) is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = UnsafeBufferPointer(start: start, count: count)
    let mode: UInt8 = count >= 4 ? input[0] : 0
    let data = count >= 4 ? input[4...] : input[...]
    let directory = FuzzDirectory.shared.fresh()

    var files: [(LSN, ArraySlice<UInt8>)] = []
    var raw = Array(data)
    if mode & 8 != 0 { repairChecksums(&raw) }
    let bytes = raw[...]
    if mode & 1 != 0, !bytes.isEmpty {
        let split = (Int(input[1]) | Int(input[2]) << 8) % bytes.count
        files = [(1, bytes[..<split]), (LSN(input[3]) + 2, bytes[split...])]
    } else {
        files = [(1, bytes)]
    }
    for (firstLSN, content) in files {
        FuzzDirectory.write(content, to: directory + "/" + segmentName(firstLSN))
    }

    let ring: KeyRing? = mode & 4 != 0 ? FuzzDirectory.keyRing : nil
    replay(directory, ring: ring)
    if mode & 2 != 0 {
        var configuration = WALConfiguration(directory: directory)
        configuration.engine = .posix
        configuration.directIO = .disabled
        configuration.preallocation = .none
        configuration.encryption = ring
        configuration.segmentTargetSize = 1 << 20
        if let wal = try? SegmentedWAL(configuration: configuration) {
            _ = try? wal.commit(.put, payload: [1, 2, 3])
            try? wal.close()
            replay(directory, ring: ring)
        }
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `<target>_main` in place of `main`, which
/// hides libFuzzer's own `main`; this one hands over to libFuzzer's driver instead.
@main
enum FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

private func replay(_ directory: String, ring: KeyRing?) {
    var stream = SegmentedWAL.records(in: directory, keyRing: ring)
    var previous: LSN = 0
    while true {
        do {
            guard let record = try stream.next() else { return }
            // A reader must never hand out records out of order.
            precondition(record.lsn > previous, "LSN \(record.lsn) after \(previous)")
            previous = record.lsn
        } catch {
            return
        }
    }
}

/// Recomputes the CRC-32C of each record whose header (magic 0x53594E57) is found where the
/// previous record ends (or at a 4 KiB boundary, or after a 16-byte preamble).
private func repairChecksums(_ bytes: inout [UInt8]) {
    var offset = 0
    while offset + 30 <= bytes.count {
        let magic = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
        guard magic == 0x5359_4E57 else {
            offset += offset == 0 ? 16 : (4096 - offset % 4096)  // maybe a preamble, or padding
            continue
        }
        let length = Int(bytes[offset + 22]) | Int(bytes[offset + 23]) << 8 | Int(bytes[offset + 24]) << 16 | Int(bytes[offset + 25]) << 24
        guard length <= bytes.count - offset - 30 else { return }
        var crc = CRC32C()
        crc.update(bytes[offset..<(offset + 26)])
        crc.update(bytes[(offset + 30)..<(offset + 30 + length)])
        let value = crc.value
        for index in 0..<4 { bytes[offset + 26 + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        offset += 30 + length
    }
}

/// Bitwise CRC-32C (Castagnoli, reflected 0x82F63B78) — slow but independent of the library,
/// for the harness only.
private struct CRC32C {
    private var state: UInt32 = 0xFFFF_FFFF
    var value: UInt32 { ~state }

    mutating func update(_ bytes: ArraySlice<UInt8>) {
        for byte in bytes {
            state ^= UInt32(byte)
            for _ in 0..<8 { state = state & 1 != 0 ? (state >> 1) ^ 0x82F6_3B78 : state >> 1 }
        }
    }
}

private func segmentName(_ firstLSN: LSN) -> String {
    let digits = String(firstLSN)
    return "wal-" + String(repeating: "0", count: 20 - digits.count) + digits + ".seg"
}

/// A scratch directory per process on tmpfs, emptied before each input.
final class FuzzDirectory: @unchecked Sendable {
    static let shared = FuzzDirectory()
    static let keyRing: KeyRing = {
        // The shared `encrypted` vector's key and epoch, so seeds from it decrypt.
        let key = try! EncryptionKey(id: 0, bytes: hex("85045e58cd2aef426dc2c21b4dbaddcf7f951233b1ae19fb93d684c1775f60c4"))
        return KeyRing(current: key, seedEpoch: hex("7536d996"))
    }()

    private let root: String

    private init() {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        root = "\(base)/wal-fuzz-\(getpid())"
    }

    func fresh() -> String {
        if let dir = opendir(root) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
                if name != "." && name != ".." { unlink(root + "/" + name) }
            }
            closedir(dir)
        } else {
            mkdir(root, 0o755)
        }
        return root
    }

    static func write(_ bytes: ArraySlice<UInt8>, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot create \(path)")
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                precondition(n > 0, "write failed")
                done += n
            }
        }
        close(fd)
    }

    private static func hex(_ string: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = string.startIndex
        while index < string.endIndex {
            let next = string.index(index, offsetBy: 2)
            out.append(UInt8(string[index..<next], radix: 16)!)
            index = next
        }
        return out
    }
}
