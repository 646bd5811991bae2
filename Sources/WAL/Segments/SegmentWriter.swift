import Glibc

/// Appends records to the active segment through a ring of two aligned buffers.
///
/// Records are copied into the *current* buffer. A flush hands that buffer to the engine
/// (write, plus fdatasync when the flush is a sync) and switches to the other buffer, so
/// appends continue while the first is on disk; before a buffer is handed over, the write
/// of the other one must have completed. Only one write is ever outstanding, so writes
/// reach the file in order.
///
/// Writes cover whole 4 KiB blocks at block-aligned offsets (what O_DIRECT demands). A flush
/// that ends inside a block pads the block with zeros on disk and carries the block's valid
/// bytes over to the start of the next buffer, which rewrites that block at the same offset.
/// The segment therefore never holds a zero gap between records, whatever the sync pattern,
/// and the zeros past the last record are never mistaken for one (a record never starts with
/// zero bytes, see ``SegmentScanner``).
final class SegmentWriter {
    static let blockSize = AlignedBuffer.alignment

    let file: SegmentFile
    let firstLSN: LSN
    private(set) var nextLSN: LSN
    /// The highest LSN whose fdatasync has completed.
    private(set) var durableLSN: LSN

    private let engine: IOEngine
    private let ring: [AlignedBuffer]
    private var current = 0
    /// Valid bytes in the current buffer.
    private var fill = 0
    /// The file offset of the current buffer's first byte (block-aligned).
    private var bufferOffset: Int64
    /// LSN made durable by the outstanding write once it completes, if it syncs.
    private var pendingDurableLSN: LSN?
    /// Bytes were appended or written since the last completed fdatasync.
    private var hasUnsyncedData = false

    /// Where the next record will start: the logical end of the segment.
    var logicalEnd: Int64 { bufferOffset + Int64(fill) }

    /// Opens a writer positioned at `end` (the end of the last valid record) of `file`,
    /// whose records run from `firstLSN` up to `nextLSN - 1`, all of them durable.
    /// Encrypts each record's payload, when the segment is encrypted.
    private let cipher: RecordCipher?

    /// - Parameters:
    ///   - preamble: written first when the segment is new (`end` is 0) and encrypted.
    ///   - cipher: encrypts every appended record (the segment's key and epoch).
    init(file: SegmentFile, engine: IOEngine, firstLSN: LSN, nextLSN: LSN, end: Int64, bufferSize: Int,
         preamble: SegmentPreamble? = nil, cipher: RecordCipher? = nil) throws(WALError) {
        self.cipher = cipher
        precondition(bufferSize >= Self.blockSize && bufferSize % Self.blockSize == 0)
        self.file = file
        self.engine = engine
        self.firstLSN = firstLSN
        self.nextLSN = nextLSN
        self.durableLSN = nextLSN - 1
        self.ring = [AlignedBuffer(capacity: bufferSize), AlignedBuffer(capacity: bufferSize)]
        self.bufferOffset = AlignedBuffer.alignDown(end)
        self.fill = Int(end - bufferOffset)
        if fill > 0 {
            // Load the partial last block: the next flush rewrites it with new records appended.
            let block = ring[0].slice(0..<Self.blockSize)
            let got = try engine.read(into: block, at: bufferOffset, from: file)
            guard got >= fill else {
                throw WALError.io(operation: "pread", errno: EIO, path: file.path)
            }
            memset(ring[0].base + fill, 0, Self.blockSize - fill)
        }
        if end == 0, let preamble {
            try preamble.encoded.withUnsafeBytes { bytes in Result { () throws(WALError) in try put(bytes) } }.get()
            hasUnsyncedData = true
        }
    }

    /// Appends one record and returns its LSN (encrypted first when the segment is). The
    /// caller checked the plaintext length against the format's limit.
    func append(storedType: UInt16, tenant: UInt32, vshard: UInt16, payload: UnsafeRawBufferPointer) throws(WALError) -> LSN {
        let lsn = nextLSN
        var header = RecordHeader(storedType: storedType, lsn: lsn, tenant: tenant, vshard: vshard,
                                  payloadLength: UInt32(payload.count))
        if let cipher {
            guard payload.count <= RecordHeader.maxPayloadLength - RecordCipher.tagSize else {
                throw WALError.payloadTooLarge(size: payload.count, limit: RecordHeader.maxPayloadLength - RecordCipher.tagSize)
            }
            header.storedType &= ~RecordType.encryptedFlag
            try cipher.seal(payload, header: header) { (ciphertext, tag) throws(WALError) in
                header.storedType |= RecordType.encryptedFlag
                header.payloadLength = UInt32(ciphertext.count + tag.count)
                header.crc = header.computeChecksum(payload: ciphertext, tag)
                try putHeader(header)
                try put(ciphertext)
                try put(tag)
            }
        } else {
            try put(header: header, payload: payload)
        }
        nextLSN += 1
        hasUnsyncedData = true
        return lsn
    }

    private func put(header: RecordHeader, payload: UnsafeRawBufferPointer) throws(WALError) {
        var header = header
        header.crc = header.computeChecksum(payload: payload)
        try putHeader(header)
        try put(payload)
    }

    private func putHeader(_ header: RecordHeader) throws(WALError) {
        try withUnsafeTemporaryAllocation(byteCount: RecordHeader.size, alignment: 8) { (scratch) throws(WALError) in
            header.encode(into: scratch)
            try put(UnsafeRawBufferPointer(scratch))
        }
    }

    /// Copies bytes into the ring, flushing each buffer as it fills.
    private func put(_ bytes: UnsafeRawBufferPointer) throws(WALError) {
        var remaining = bytes
        while !remaining.isEmpty {
            let buffer = ring[current]
            let count = min(buffer.capacity - fill, remaining.count)
            (buffer.base + fill).copyMemory(from: remaining.baseAddress!, byteCount: count)
            fill += count
            remaining = UnsafeRawBufferPointer(rebasing: remaining[count...])
            if fill == buffer.capacity {
                try flush(sync: false)
            }
        }
    }

    /// Makes every appended record durable: writes the current buffer (its last block padded)
    /// followed by fdatasync, and waits for both.
    func sync() throws(WALError) {
        guard hasUnsyncedData || pendingDurableLSN != nil else { return }
        if hasUnsyncedData { try flush(sync: true) }
        try waitForOutstandingWrite()
        hasUnsyncedData = false
    }

    /// Hands the current buffer to the engine and switches to the other one.
    private func flush(sync: Bool) throws(WALError) {
        try waitForOutstandingWrite()
        let buffer = ring[current]
        let length = AlignedBuffer.alignUp(fill)
        // Zero the padding so that no stale buffer content ever reaches the disk.
        if length > fill { memset(buffer.base + fill, 0, length - fill) }
        try engine.submitWrite(UnsafeRawBufferPointer(buffer.slice(0..<length)), at: bufferOffset, to: file, sync: sync)
        if sync {
            pendingDurableLSN = nextLSN - 1
            hasUnsyncedData = false
        }
        let whole = AlignedBuffer.alignDown(fill)
        let carried = fill - whole
        let next = ring[1 - current]
        if carried > 0 {
            next.base.copyMemory(from: buffer.base + whole, byteCount: carried)
        }
        bufferOffset += Int64(whole)
        fill = carried
        current = 1 - current
    }

    private func waitForOutstandingWrite() throws(WALError) {
        try engine.complete()
        if let lsn = pendingDurableLSN {
            durableLSN = lsn
            pendingDurableLSN = nil
        }
    }

    /// Makes the segment final: everything durable, the file cut to the end of its last
    /// record (dropping block padding and any preallocated tail), and closed.
    func seal() throws(WALError) {
        try trimAndSync()
        file.close()
    }

    /// Everything appended made durable and the file cut to the end of its last record. The
    /// writer stays usable (a rollover whose next file cannot be created keeps appending here:
    /// the carried partial block is rewritten at the same offset and the file grows again).
    func trimAndSync() throws(WALError) {
        if hasUnsyncedData { try flush(sync: false) }
        try waitForOutstandingWrite()
        let end = logicalEnd
        if try file.size() != end {
            try Syscall.ftruncate(file.descriptor, length: end, path: file.path)
        }
        // fsync, not fdatasync: the new size is metadata the next reader depends on.
        try Syscall.fsync(file.descriptor, path: file.path)
        durableLSN = nextLSN - 1
        hasUnsyncedData = false
    }

    /// Closes without syncing (used after a failure, when nothing more can be written).
    func abandon() {
        try? engine.complete()
        file.close()
    }
}
