import Glibc
import Synchronization
import WALFormat
import WALIO

/// The last bytes written to the active segment, kept in memory for the live tailers of this
/// process, so that a tailer woken by every flush reads the new records from here instead of
/// from the file.
///
/// Why: the writer writes with O_DIRECT, which bypasses the page cache and invalidates the
/// cached pages it overwrites — and every flush rewrites the segment's last partial block. A
/// tailer reading the file at the live edge therefore reads from the device on nearly every
/// wake-up, and eight of them halved the committers' throughput (docs/PERFORMANCE.md).
///
/// What it holds: the bytes of the completed writes of one segment, contiguous, as they are on
/// disk, from `start` to `end`; only the record data of each write (whole blocks), not the
/// zeros written ahead of it. Past `end` the file holds nothing a completed write put there —
/// zeros, or a write still in flight — so a read that starts inside the cached range gets the
/// cached bytes and nothing more, which a scanner reads as the live edge, exactly as it would
/// read a file whose in-flight write had not landed yet.
///
/// Rules that keep it exact:
/// - the writer records each completed write *before* it publishes the durability that wakes
///   tailers, and in file order (only the holder of the I/O role writes);
/// - a write not recorded (no tailer registered, a job larger than the cache, a rollover, a
///   close) empties it: a gap is never papered over;
/// - a read names its segment; any other segment misses, and misses go to the file.
///
/// Memory: nothing until a tailer registers; then ``capacity`` bytes, released by the first
/// write after the last tailer has gone.
package final class LiveEdgeCache: Sendable {
    /// The default capacity, 1 MiB: a tailer less than that behind the writer reads from memory.
    package static let defaultCapacity = 1 << 20

    /// Bytes held at most; at least one whole write (a ring buffer), since a larger write is
    /// not recorded.
    let capacity: Int

    /// The writer writes with O_DIRECT: tailers read the active segment with O_DIRECT too,
    /// so that their reads never put its pages in the page cache.
    package let writerIsDirect: Bool

    package init(writerIsDirect: Bool, capacity: Int = LiveEdgeCache.defaultCapacity) {
        self.writerIsDirect = writerIsDirect
        self.capacity = capacity
    }

    private struct State {
        var buffer: AlignedBuffer?
        /// The segment (first LSN) the bytes belong to; 0 when empty.
        var segment: LSN = 0
        /// File offset of `buffer`'s first byte (block-aligned).
        var start: Int64 = 0
        /// Valid bytes from `start`.
        var count = 0
    }

    /// `AlignedBuffer` is a class that is not `Sendable`; every access is under the mutex.
    private struct Guarded: @unchecked Sendable { var state = State() }
    private let guarded = Mutex(Guarded())
    private let readers = Atomic<Int>(0)
    /// Reads answered from memory, and reads sent to the file (for tests and diagnostics).
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)

    /// A tailer starts reading through the cache (the writer starts filling it).
    package func register() { readers.add(1, ordering: .relaxed) }
    package func unregister() { readers.subtract(1, ordering: .relaxed) }

    /// Records a completed write of `bytes` at `offset` in `segment` (the writer, after the
    /// write returned and before it publishes the durable LSN).
    package func recordWrite(segment: LSN, offset: Int64, bytes: UnsafeRawBufferPointer) {
        let wanted = readers.load(ordering: .relaxed) > 0
        guarded.withLock { guarded in
            guard wanted, bytes.count <= capacity else {
                // A write not recorded: what is held no longer matches the file.
                guarded.state.segment = 0
                guarded.state.count = 0
                if !wanted { guarded.state.buffer = nil }
                return
            }
            let buffer = guarded.state.buffer ?? AlignedBuffer(capacity: capacity)
            guarded.state.buffer = buffer
            let end = guarded.state.start + Int64(guarded.state.count)
            if guarded.state.segment != segment || offset < guarded.state.start || offset > end {
                // A new segment, or not contiguous with what is held: start afresh here.
                guarded.state.segment = segment
                guarded.state.start = offset
            }
            var start = guarded.state.start
            let newEnd = offset + Int64(bytes.count)
            if newEnd - start > Int64(capacity) {
                // Full: keep the newest half (at least the new write), moved to the front.
                let keepFrom = min(offset, AlignedBuffer.alignDown(newEnd - Int64(capacity / 2)))
                let kept = Int(offset - keepFrom)
                if kept > 0 { memmove(buffer.base, buffer.base + Int(keepFrom - start), kept) }
                start = keepFrom
            }
            (buffer.base + Int(offset - start)).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            guarded.state.start = start
            guarded.state.count = Int(newEnd - start)
        }
    }

    /// Forgets everything (the active segment is about to change, or the WAL closes).
    package func invalidate() {
        guarded.withLock { guarded in
            guarded.state.segment = 0
            guarded.state.count = 0
        }
    }

    /// Where the cached bytes of `segment` end (the file is at least that long); nil when none
    /// of that segment are cached.
    func writtenEnd(segment: LSN) -> Int64? {
        guarded.withLock { guarded -> Int64? in
            let state = guarded.state
            guard segment != 0, state.segment == segment, state.buffer != nil else { return nil }
            return state.start + Int64(state.count)
        }
    }

    /// Copies the file's bytes from `offset` of `segment` into `target` — as many as are
    /// cached, up to its size — and returns how many; nil when `offset` is not inside the
    /// cached range of that segment (read the file instead). Fewer bytes than asked for mean
    /// the written data ends there.
    func read(segment: LSN, at offset: Int64, into target: UnsafeMutableRawBufferPointer) -> Int? {
        let count = guarded.withLock { guarded -> Int? in
            let state = guarded.state
            let end = state.start + Int64(state.count)
            guard segment != 0, state.segment == segment, offset >= state.start, offset <= end,
                  let buffer = state.buffer else { return nil }
            let count = min(target.count, Int(end - offset))
            if count > 0 {
                target.baseAddress!.copyMemory(from: buffer.base + Int(offset - state.start), byteCount: count)
            }
            return count
        }
        if count == nil { misses.add(1, ordering: .relaxed) } else { hits.add(1, ordering: .relaxed) }
        return count
    }
}
