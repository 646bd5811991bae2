import Glibc
import WALFormat
import WALIO

/// A rewrite of the log's end — ``SegmentedWAL/truncate(after:)`` or ``SegmentedWAL/reset(to:)``
/// — made crash-atomic by a durable intent.
///
/// The intent is the file `wal-cut` beside the segments (ours; the seed has none, and its
/// readers ignore it). A cut goes in three steps:
///
/// 1. **Record the intent** (``record(in:)``): written to `wal-cut.tmp`, fsynced, renamed to
///    `wal-cut`, directory fsynced. Before the rename completes the old log stands; after it,
///    the cut does.
/// 2. **Apply it** (``apply(in:)``): the segments wholly above the cut deleted (newest first),
///    the segment holding the kept LSN cut after its record and fsynced — or, when no record
///    is kept (a reset, or a cut below the first retained record), every segment deleted and
///    an empty segment named after the next LSN created; then a directory fsync. Every step
///    can be repeated: applying a cut that is half applied finishes it.
/// 3. **Remove the intent**, directory fsync.
///
/// Opening the WAL applies a pending intent before anything else, and every reader honours it:
/// while `wal-cut` exists, the log ends at the cut whatever the segments still hold. So after
/// a crash at any point the log is either the whole old log or exactly the cut one, and since
/// the intent goes only after the removed records are gone from disk, no removed record can
/// come back once new records follow the cut.
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | magic `WALC` |
/// | 4 | 2 | version = 1, little-endian |
/// | 6 | 1 | kind: 1 = truncate after, 2 = reset |
/// | 7 | 1 | reserved, 0 |
/// | 8 | 8 | LSN, little-endian: the last kept (truncate), or the one before the next (reset) |
/// | 16 | 4 | CRC-32C of bytes 0..<16, little-endian |
package struct LogCut: Equatable, Sendable {
    package enum Kind: UInt8, Sendable {
        /// Every record above ``LogCut/lsn`` goes; the ones up to it stay.
        case truncateAfter = 1
        /// Every record goes; the next one gets ``LogCut/lsn`` + 1.
        case reset = 2
    }

    package var kind: Kind
    package var lsn: LSN

    package init(kind: Kind, lsn: LSN) {
        self.kind = kind
        self.lsn = lsn
    }

    package static let fileName = "wal-cut"
    static let encodedSize = 20
    static let magic: [UInt8] = Array("WALC".utf8)
    static let version: UInt16 = 1

    /// The LSN the next record gets once the cut is applied.
    package var nextLSN: LSN { lsn + 1 }

    /// The highest LSN the cut keeps; records above it are gone (a reset keeps none, but
    /// nothing at or below its LSN is there to keep either).
    package var lastKept: LSN { lsn }

    package static func path(in directory: String) -> String { FilePaths.join(directory, fileName) }

    // MARK: The intent

    /// The cut recorded in `directory` and not yet finished, if any. A temporary file left by a
    /// crash while recording is not an intent (it was never renamed into place) and is ignored.
    /// - Throws: ``WALError/corruption(segment:offset:lsn:reason:)`` when `wal-cut` exists but
    ///   is not a valid intent (it is written whole and fsynced before its rename, so this is
    ///   damage, not a crash).
    package static func pending(in directory: String) throws(WALError) -> LogCut? {
        let path = path(in: directory)
        let fd: Int32
        do {
            fd = try Syscall.open(path, flags: O_RDONLY)
        } catch where error.errno == ENOENT {
            return nil
        }
        defer { Syscall.close(fd) }
        var bytes = [UInt8](repeating: 0, count: encodedSize + 1)
        let count = try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(WALError) -> Int in try Syscall.preadFull(fd, buffer, offset: 0, path: path) }
        }.get()
        guard count == encodedSize, let cut = decode(bytes[0..<encodedSize]) else {
            throw WALError.corruption(segment: fileName, offset: 0, lsn: 0,
                                      reason: "the cut intent is damaged (\(count) bytes)")
        }
        return cut
    }

    /// Makes the intent durable: from here on the cut is what the log is.
    package func record(in directory: String) throws(WALError) {
        let path = Self.path(in: directory)
        let temporary = path + ".tmp"
        let fd = try Syscall.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        do throws(WALError) {
            try encoded.withUnsafeBytes { bytes in
                Result { () throws(WALError) in try Syscall.pwriteAll(fd, bytes, offset: 0, path: temporary) }
            }.get()
            try Syscall.fsync(fd, path: temporary)
        } catch {
            Syscall.close(fd)
            try? Syscall.unlink(temporary)
            throw error
        }
        Syscall.close(fd)
        try Syscall.rename(temporary, path)
        try Syscall.fsyncDirectory(directory)
    }

    /// Removes a temporary intent file a crash left behind while recording (never an intent).
    package static func removeLeftover(in directory: String) throws(WALError) {
        let temporary = path(in: directory) + ".tmp"
        if try Syscall.entryType(temporary) != nil { try Syscall.unlink(temporary) }
    }

    package var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.encodedSize)
        bytes.replaceSubrange(0..<4, with: Self.magic)
        bytes[4] = UInt8(Self.version & 0xFF)
        bytes[5] = UInt8(Self.version >> 8)
        bytes[6] = kind.rawValue
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: lsn >> (8 * UInt64(index))) }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<16])) }
        for index in 0..<4 { bytes[16 + index] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(index))) }
        return bytes
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> LogCut? {
        let bytes = Array(bytes)
        guard bytes.count == encodedSize, Array(bytes[0..<4]) == magic,
              UInt16(bytes[4]) | UInt16(bytes[5]) << 8 == version,
              let kind = Kind(rawValue: bytes[6]) else { return nil }
        let stored = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[16 + $1]) << (8 * UInt32($1)) }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<16])) }
        guard stored == crc else { return nil }
        let lsn = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[8 + $1]) << (8 * UInt64($1)) }
        guard lsn < LSNDomain.last else { return nil }  // no LSN would be left for the next record
        return LogCut(kind: kind, lsn: lsn)
    }

    // MARK: Applying

    /// Applies the recorded cut to the segments (idempotent: a half-applied cut is finished)
    /// and removes the intent. Returns where the log now ends, for the writer to resume.
    @discardableResult
    package func apply(in directory: String) throws(WALError) -> SegmentTail {
        let segments = try SegmentDirectory.discover(directory)
        let keep: Int? = kind == .reset ? nil : segments.lastIndex { $0.firstLSN <= lsn }
        let doomed = segments[(keep.map { $0 + 1 } ?? 0)...]
        for segment in doomed.reversed() {
            try Syscall.unlink(segment.path)
        }
        let tail: SegmentTail
        if let keep {
            tail = try cutSegment(segments[keep])
        } else {
            tail = try createEmptySegment(in: directory)
        }
        try Syscall.fsyncDirectory(directory)
        try Syscall.unlink(Self.path(in: directory))
        try Syscall.fsyncDirectory(directory)
        return tail
    }

    /// Cuts `segment` after the record with ``lsn`` (its last kept) and makes the cut durable.
    private func cutSegment(_ segment: SegmentInfo) throws(WALError) -> SegmentTail {
        let file = try SegmentFile.openForReading(path: segment.path)
        defer { file.close() }
        let scanner = try SegmentScanner(file: file)
        var end = scanner.offset
        var due = segment.firstLSN
        while due <= lsn {
            guard case .record(let header, _, _) = try scanner.next(), header.lsn == due else {
                throw WALError.corruption(segment: segment.name, offset: end, lsn: due,
                                          reason: "the cut after LSN \(lsn) falls beyond the segment's records")
            }
            end = scanner.offset
            due += 1
        }
        let writable = try Syscall.open(segment.path, flags: O_WRONLY)
        defer { Syscall.close(writable) }
        if try file.size() != end {
            try Syscall.ftruncate(writable, length: end, path: segment.path)
        }
        try Syscall.fsync(writable, path: segment.path)
        var info = segment
        info.size = end
        info.isActive = true
        return SegmentTail(segment: info, end: end, nextLSN: nextLSN, fileSize: end, preamble: scanner.preamble)
    }

    /// Creates the empty segment the log continues in when no record is kept.
    private func createEmptySegment(in directory: String) throws(WALError) -> SegmentTail {
        let path = SegmentDirectory.path(directory, firstLSN: nextLSN)
        let fd = try Syscall.open(path, flags: O_RDWR | O_CREAT | O_TRUNC)
        defer { Syscall.close(fd) }
        try Syscall.fsync(fd, path: path)
        let info = SegmentInfo(firstLSN: nextLSN, path: path, size: 0, isActive: true)
        return SegmentTail(segment: info, end: 0, nextLSN: nextLSN, fileSize: 0, preamble: nil)
    }
}
