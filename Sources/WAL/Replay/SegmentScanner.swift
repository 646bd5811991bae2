import Glibc

/// Reads the records of one segment file in order, checking each one's framing and CRC.
///
/// It knows nothing of LSN continuity or record types (``ReplayCursor`` does); it only says,
/// record by record, whether the bytes at the current offset form a valid record.
///
/// Reads go through a window of at least ``windowSize`` bytes; a record larger than the
/// window grows it to that record's size, which has been checked against the 64 MiB limit
/// and the file's size first, so memory is bounded by the largest record, never by a length
/// field read from disk.
///
/// Zero bytes, where a header should start:
/// | where | what it is | result |
/// |---|---|---|
/// | at a 4 KiB boundary | unused space: nothing is ever written after a zero block | end |
/// | inside a block, zeros up to the boundary | the seed's O_DIRECT padding | skip to the boundary |
/// | inside a block, non-zero bytes before the boundary | damage | invalid |
final class SegmentScanner {
    enum Step {
        /// A valid record. `payload` stays valid until the next call to ``next()``.
        case record(RecordHeader, payload: UnsafeRawBufferPointer)
        /// No more data: end of file, or zeros from here on.
        case end
        /// The bytes at `offset` are not a valid record.
        case invalid(offset: Int64, reason: String)
    }

    static let windowSize = 1 << 20
    static let blockSize: Int64 = 4096

    let file: SegmentFile
    let fileSize: Int64
    /// Where the next record starts.
    private(set) var offset: Int64

    private let engine: IOEngine
    private var window: UnsafeMutableRawBufferPointer
    private var windowStart: Int64 = 0
    private var windowCount = 0

    /// The segment's encryption preamble, when it starts with one (records then start after it).
    private(set) var preamble: SegmentPreamble?

    /// Opens a scanner at the segment's first record, reading its preamble if it has one.
    /// - Throws: ``WALError/corruption(segment:offset:lsn:reason:)`` for a preamble that is
    ///   present but unusable (truncated, unknown version or cipher).
    init(file: SegmentFile, engine: IOEngine) throws(WALError) {
        self.file = file
        self.engine = engine
        self.fileSize = try file.size()
        self.offset = 0
        self.window = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.windowSize, alignment: 4096)
        let available = try load(SegmentPreamble.size, at: 0)
        let head = bytes(at: 0, count: available)
        if SegmentPreamble.starts(head) {
            switch SegmentPreamble.decode(head) {
            case .success(let preamble):
                self.preamble = preamble
                self.offset = Int64(SegmentPreamble.size)
            case .failure(let problem):
                throw WALError.corruption(segment: FilePaths.lastComponent(file.path), offset: 0, lsn: 0,
                                          reason: problem.description)
            }
        }
    }

    deinit { window.deallocate() }

    /// Bytes currently allocated for the read window (tests check it never follows a bogus length).
    var windowCapacity: Int { window.count }

    /// Reads the record at the current offset.
    func next() throws(WALError) -> Step {
        while true {
            if offset >= fileSize { return .end }
            let available = try load(RecordHeader.size, at: offset)
            let headerBytes = bytes(at: offset, count: available)
            if available < RecordHeader.size {
                return isZero(headerBytes) ? .end : .invalid(offset: offset, reason: "truncated record header")
            }
            if isZero(headerBytes) {
                if offset % Self.blockSize == 0 { return .end }
                let boundary = min((offset / Self.blockSize + 1) * Self.blockSize, fileSize)
                let gap = Int(boundary - offset)
                _ = try load(gap, at: offset)
                guard isZero(bytes(at: offset, count: gap)) else {
                    return .invalid(offset: offset, reason: "zero header followed by non-zero bytes")
                }
                offset = boundary
                continue
            }
            guard let header = RecordHeader(decoding: headerBytes) else {
                return .invalid(offset: offset, reason: "bad magic")
            }
            let payloadLength = Int(header.payloadLength)
            guard payloadLength <= RecordHeader.maxPayloadLength else {
                return .invalid(offset: offset, reason: "payload length \(payloadLength) exceeds the 64 MiB limit")
            }
            let recordLength = RecordHeader.size + payloadLength
            guard Int64(recordLength) <= fileSize - offset else {
                return .invalid(offset: offset, reason: "record of \(recordLength) bytes extends past the end of the file")
            }
            guard try load(recordLength, at: offset) == recordLength else {
                return .invalid(offset: offset, reason: "file shorter than its size")
            }
            let payload = UnsafeRawBufferPointer(bytes(at: offset + Int64(RecordHeader.size), count: payloadLength))
            guard header.computeChecksum(payload: payload) == header.crc else {
                return .invalid(offset: offset, reason: "checksum mismatch")
            }
            guard header.version <= RecordHeader.formatVersion else {
                throw WALError.unsupportedFormatVersion(version: header.version, segment: FilePaths.lastComponent(file.path), offset: offset)
            }
            offset += Int64(recordLength)
            return .record(header, payload: payload)
        }
    }

    /// The offset of the first non-zero byte at or after the current offset, or nil when
    /// the rest of the file is zeros.
    func firstNonZeroByte() throws(WALError) -> Int64? {
        var position = offset
        while position < fileSize {
            let count = try load(Self.windowSize, at: position)
            let chunk = bytes(at: position, count: count)
            if let index = chunk.firstIndex(where: { $0 != 0 }) { return position + Int64(index) }
            position += Int64(count)
        }
        return nil
    }

    /// Makes `[offset, offset + count)` present in the window; returns how many of those bytes
    /// the file has (fewer only at its end). Reads start at a block boundary and cover whole
    /// blocks, as O_DIRECT requires, and read ahead up to the window size.
    private func load(_ count: Int, at position: Int64) throws(WALError) -> Int {
        let wanted = Int(min(Int64(count), fileSize - position))
        if position >= windowStart && position + Int64(wanted) <= windowStart + Int64(windowCount) {
            return wanted
        }
        let start = AlignedBuffer.alignDown(position)
        let needed = AlignedBuffer.alignUp(Int(position - start) + wanted)
        let length = max(needed, min(Self.windowSize, AlignedBuffer.alignUp(Int(fileSize - start))))
        if length > window.count {
            window.deallocate()
            window = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: AlignedBuffer.alignment)
        }
        windowStart = start
        windowCount = try engine.read(into: UnsafeMutableRawBufferPointer(rebasing: window[0..<length]), at: start, from: file)
        return max(0, min(wanted, windowCount - Int(position - start)))
    }

    private func bytes(at position: Int64, count: Int) -> UnsafeRawBufferPointer {
        let start = Int(position - windowStart)
        return UnsafeRawBufferPointer(rebasing: window[start..<(start + count)])
    }

    private func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.allSatisfy { $0 == 0 }
    }
}
