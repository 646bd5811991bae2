import Glibc
import WALFormat
import WALIO

/// The ring of aligned buffers a segment's bytes are copied into on their way to disk (two by
/// default: one on disk while the other fills; one more per further flush in flight).
///
/// Bytes are copied into the *current* buffer. A buffer leaves the ring as a ``Slice`` (whole
/// 4 KiB blocks at a block-aligned file offset, what O_DIRECT demands) and the ring moves on
/// to the next buffer. Buffers leave and come back in ring order, and a buffer can leave only
/// when the next one is back, so writes reach the file in order.
///
/// A slice that ends inside a block pads the block with zeros on disk and carries the block's
/// valid bytes over to the start of the next buffer, which rewrites that block at the same
/// offset: the segment never holds a zero gap between records. A slice can also end at the
/// last block boundary (`wholeBlocksOnly`), leaving the partial block in the ring.
///
/// Zero-ahead: a small slice reaching blocks the file has never had written carries
/// ``zeroAhead`` bytes of zeros after it. The first write into an unwritten extent (fallocated
/// space) or past the end of the file makes its fdatasync commit the file system's journal
/// too — about twice the cost of a data-only fdatasync on ext4; commits of small records would
/// pay that whenever they cross into a new block. Writing 64 KiB of zeros ahead, in the same
/// write, pays it once per 64 KiB (the blocks that follow are overwrites). Zeros past the last
/// record read as the end of the log, and sealing cuts them off. Slices of 64 KiB or more
/// (streaming) get none. 64 KiB measured best of 64 KiB / 256 KiB / 1 MiB (docs/PERFORMANCE.md).
struct BufferRing {
    static let blockSize = AlignedBuffer.alignment
    static let zeroAhead = 64 * 1024

    /// Whole blocks of one buffer on their way to disk.
    struct Slice {
        /// The buffer it was taken from; -1 for none (a sync alone).
        let buffer: Int
        /// That buffer's memory (nil for none): the ring keeps it allocated while the slice is out.
        let base: UnsafeMutableRawPointer?
        /// Bytes to write (whole blocks, zeros ahead included).
        let length: Int
        /// The first bytes of `length` that hold data (the rest are zeros written ahead).
        let dataLength: Int
        /// The file offset of its first byte (block-aligned).
        let offset: Int64

        /// No buffer: nothing to write at `offset`.
        static func empty(at offset: Int64) -> Slice { Slice(buffer: -1, base: nil, length: 0, dataLength: 0, offset: offset) }
    }

    private let buffers: [AlignedBuffer]
    /// Per buffer: every byte at or past this offset is zero (buffers start zero-filled). A
    /// slice must write zeros after its data; only the bytes below this mark can be stale, so
    /// only those are cleared — a commit of a few records no longer clears the rest of its block.
    private var zeroFrom: [Int]
    private var current = 0
    /// Buffers out of the ring (taken, not yet returned): the `out` buffers before `current`.
    private(set) var out = 0
    /// Valid bytes in the current buffer.
    private(set) var fill = 0
    /// The file offset of the current buffer's first byte (block-aligned).
    private(set) var bufferOffset: Int64
    /// The current buffer holds bytes no slice has taken yet.
    private(set) var hasUntakenBytes = false
    /// File offset up to which every block has been written (records or zeros).
    private var writtenUpTo: Int64

    /// A ring whose next byte goes at file offset `end`. The partial block before `end`, if
    /// any, is read from `file`: the next slice rewrites it with new bytes appended.
    init(count: Int, bufferSize: Int, end: Int64, file: SegmentFile) throws(WALError) {
        precondition(count >= 2 && bufferSize >= Self.blockSize && bufferSize % Self.blockSize == 0)
        buffers = (0..<count).map { _ in AlignedBuffer(capacity: bufferSize) }
        zeroFrom = Array(repeating: 0, count: count)
        bufferOffset = AlignedBuffer.alignDown(end)
        fill = Int(end - bufferOffset)
        writtenUpTo = AlignedBuffer.alignUp(end)
        if fill > 0 {
            let block = buffers[0].slice(0..<Self.blockSize)
            let got = try file.read(into: block, at: bufferOffset)
            guard got >= fill else { throw WALError.io(operation: "pread", errno: EIO, path: file.path) }
            memset(buffers[0].base + fill, 0, Self.blockSize - fill)
            zeroFrom[0] = fill
        }
    }

    /// Where the next byte goes.
    var logicalEnd: Int64 { bufferOffset + Int64(fill) }
    /// The buffer after the current one is out: the current one cannot leave.
    var nextIsOut: Bool { out == buffers.count - 1 }
    /// The current buffer is full.
    var currentIsFull: Bool { fill == buffers[current].capacity }
    /// Bytes that fit without a buffer coming back first.
    var room: Int { buffers[current].capacity - fill + (buffers.count - 1 - out) * buffers[current].capacity }

    /// Copies as much of `bytes` as fits in the current buffer; returns the rest.
    mutating func copy(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let buffer = buffers[current]
        let count = min(buffer.capacity - fill, bytes.count)
        (buffer.base + fill).copyMemory(from: bytes.baseAddress!, byteCount: count)
        fill += count
        hasUntakenBytes = true
        return UnsafeRawBufferPointer(rebasing: bytes[count...])
    }

    /// Takes the current buffer out of the ring and switches to the next, carrying the partial
    /// last block over: the slice writes it too (padded with zeros), or, `wholeBlocksOnly`,
    /// ends before it.
    mutating func take(wholeBlocksOnly: Bool = false) -> Slice {
        precondition(!nextIsOut, "the next buffer must be back before this one leaves")
        let buffer = buffers[current]
        let whole = AlignedBuffer.alignDown(fill)
        let carried = fill - whole
        let next = (current + 1) % buffers.count
        if carried > 0 {
            buffers[next].base.copyMemory(from: buffer.base + whole, byteCount: carried)
            zeroFrom[next] = max(zeroFrom[next], carried)
        }
        let dataLength = wholeBlocksOnly ? whole : AlignedBuffer.alignUp(fill)
        var length = dataLength
        if bufferOffset + Int64(length) > writtenUpTo && length < Self.zeroAhead {
            // After a whole-blocks slice, over the carried block's place too: the next slice rewrites it.
            length += min(Self.zeroAhead, buffer.capacity - length)
        }
        // Zero what follows the data, so that no stale buffer content ever reaches the disk:
        // only below `zeroFrom` can a byte be stale. All of it is cleared, past the slice's end
        // too, so the buffer is clean after its data again (each stale byte is cleared once).
        let stale = max(zeroFrom[current], fill)
        let dataEnd = wholeBlocksOnly ? whole : fill
        if stale > dataEnd { memset(buffer.base + dataEnd, 0, stale - dataEnd) }
        zeroFrom[current] = dataEnd
        writtenUpTo = max(writtenUpTo, bufferOffset + Int64(length))
        let slice = Slice(buffer: current, base: buffer.base, length: length, dataLength: dataLength, offset: bufferOffset)
        bufferOffset += Int64(whole)
        fill = carried
        current = next
        out += 1
        hasUntakenBytes = wholeBlocksOnly && carried > 0
        return slice
    }

    /// A slice's buffer is back in the ring (its write completed or failed).
    mutating func giveBack(_ slice: Slice) {
        if slice.buffer >= 0 { out -= 1 }
    }

    /// The bytes a slice writes (`data`: without the zeros written ahead); valid until it is given back.
    func bytes(of slice: Slice, data: Bool = false) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: slice.base, count: data ? slice.dataLength : slice.length)
    }

    /// The kernel may still read the buffers: never reuse or free them (``AlignedBuffer/pinForever(_:)``).
    func pinForever() { AlignedBuffer.pinForever(buffers) }
}
