import Glibc
import Synchronization

/// A fixed-size, page-aligned byte buffer owned by the I/O layer: O_DIRECT transfers
/// need the memory, the length and the file offset aligned to the device's block size.
package final class AlignedBuffer {
    /// The alignment of every buffer and of every O_DIRECT transfer.
    package static let alignment = 4096

    package let capacity: Int
    package let base: UnsafeMutableRawPointer

    /// Allocates `capacity` bytes (a multiple of ``alignment``), zero-filled.
    package init(capacity: Int) {
        precondition(capacity > 0 && capacity % Self.alignment == 0, "buffer capacity must be a multiple of \(Self.alignment)")
        var pointer: UnsafeMutableRawPointer?
        let rc = posix_memalign(&pointer, Self.alignment, capacity)
        precondition(rc == 0 && pointer != nil, "posix_memalign(\(capacity)) failed: \(rc)")
        self.capacity = capacity
        self.base = pointer!
        memset(base, 0, capacity)
    }

    deinit { free(base) }

    /// How many buffers were pinned (``pinForever(_:)``).
    private static let pinned = Atomic<Int>(0)

    /// Keeps `buffers` allocated for the rest of the process: the kernel may still be reading
    /// them (an io_uring that failed while requests were in flight), and no write may read
    /// freed memory. One retain each that is never released.
    package static func pinForever(_ buffers: [AlignedBuffer]) {
        for buffer in buffers { _ = Unmanaged.passRetained(buffer) }
        pinned.add(buffers.count, ordering: .relaxed)
    }

    /// How many buffers are pinned (tests).
    package static var pinnedCount: Int { pinned.load(ordering: .relaxed) }

    package var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: capacity) }

    package func slice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity)
        return UnsafeMutableRawBufferPointer(rebasing: bytes[range])
    }

    /// Asserts (debug builds) what O_DIRECT demands of a transfer: memory, length and file
    /// offset aligned. Checked before every direct write and read, so that a violation is a
    /// crash at the line that caused it, not an EINVAL from the kernel later.
    static func assertAligned(_ bytes: UnsafeRawBufferPointer, offset: Int64, direct: Bool) {
        guard direct else { return }
        assert(Int(bitPattern: bytes.baseAddress) % alignment == 0, "O_DIRECT buffer not \(alignment)-aligned")
        assert(bytes.count % alignment == 0, "O_DIRECT length \(bytes.count) not a multiple of \(alignment)")
        assert(offset % Int64(alignment) == 0, "O_DIRECT offset \(offset) not a multiple of \(alignment)")
    }

    package static func alignDown(_ value: Int) -> Int { value & ~(alignment - 1) }
    package static func alignUp(_ value: Int) -> Int { (value + alignment - 1) & ~(alignment - 1) }
    package static func alignDown(_ value: Int64) -> Int64 { value & ~Int64(alignment - 1) }
    package static func alignUp(_ value: Int64) -> Int64 { (value + Int64(alignment) - 1) & ~Int64(alignment - 1) }
}
