import CLiburing
import Dispatch
import Glibc
import Synchronization
import WALFormat
import WALIO

/// How the next segment file is prepared before rollover needs it.
public enum SegmentPreallocation: String, Sendable, CaseIterable {
    /// Created at rollover, on the append path; the file grows as it is written.
    case none
    /// Created and fallocated to the target size in the background. ENOSPC shows up before
    /// rollover, but the first write into each unwritten extent costs a journal commit inside
    /// fdatasync (about twice the latency on ext4).
    case allocated
    /// Fallocated and then filled with zeros in the background (as PostgreSQL does), so
    /// writes into the segment are overwrites of written blocks and fdatasync only flushes data.
    case zeroFilled
}

/// Prepares the next segment off the append path: a file under a name discovery ignores
/// (`wal-next.prealloc`), fallocated to the target size — so ENOSPC shows up before rollover —
/// and, with ``SegmentPreallocation/zeroFilled``, written with zeros and fdatasynced.
///
/// The work runs on a background queue, started when the active segment passes half its
/// target. At rollover ``take()`` hands over the ready file (waiting if the work is still
/// running); the WAL renames it to the new segment's name. The file holds only zeros, which
/// replay reads as the end of the log, so a prepared file can never replay anything stale.
final class Preallocator: Sendable {
    static let spareName = "wal-next.prealloc"

    private enum Phase: Sendable {
        case idle
        case running
        case ready(String)
        case failed(WALError)
    }

    let path: String
    private let size: Int64
    private let mode: SegmentPreallocation
    private let direct: Bool
    private let phase = Mutex(Phase.idle)
    private let done = DispatchGroup()
    private let queue = DispatchQueue(label: "swift-wal.preallocator", qos: .utility)

    init(directory: String, size: Int64, mode: SegmentPreallocation, direct: Bool) {
        self.path = FilePaths.join(directory, Self.spareName)
        self.size = size
        self.mode = mode
        self.direct = direct
    }

    /// Removes a spare left behind by a crash (its content is zeros or partial; it is redone).
    static func removeLeftover(in directory: String) throws(WALError) {
        let path = FilePaths.join(directory, spareName)
        if try Syscall.fileType(path) != nil { try Syscall.unlink(path) }
    }

    /// Starts preparing the spare unless that is under way or done.
    func startIfIdle() {
        guard mode != .none else { return }
        let start = phase.withLock { phase -> Bool in
            guard case .idle = phase else { return false }
            phase = .running
            return true
        }
        guard start else { return }
        done.enter()
        queue.async { [self] in
            let outcome: Phase
            do throws(WALError) {
                try prepare()
                outcome = .ready(path)
            } catch {
                try? Syscall.unlink(path)
                outcome = .failed(error)
            }
            phase.withLock { $0 = outcome }
            done.leave()
        }
    }

    /// The prepared spare's path, waiting for the work if it is running; nil when nothing was
    /// started. Throws what the preparation hit (e.g. ENOSPC from fallocate); either way the
    /// preallocator is idle again afterwards.
    func take() throws(WALError) -> String? {
        done.wait()
        let finished = phase.withLock { phase -> Phase in
            defer { phase = .idle }
            return phase
        }
        switch finished {
        case .idle, .running: return nil
        case .ready(let path): return path
        case .failed(let error): throw error
        }
    }

    /// Waits for background work and removes an unused spare (at close).
    func discard() {
        if let spare = try? take() { try? Syscall.unlink(spare) }
    }

    private func prepare() throws(WALError) {
        // ext4 can allocate part of a range before fallocate fails with ENOSPC; until the spare
        // is removed again, that space is missing for the active segment's writes. Checking the
        // free space first keeps a doomed preallocation from touching the disk at all.
        if let available = try Syscall.availableBytes(onFileSystemOf: FilePaths.parent(of: path)), available < size {
            throw WALError.io(operation: "fallocate", errno: ENOSPC, path: path)
        }
        let fd = try Syscall.open(path, flags: O_RDWR | O_CREAT | O_TRUNC)
        defer { Syscall.close(fd) }
        do {
            try Syscall.fallocate(fd, mode: 0, offset: 0, length: size, path: path)
        } catch where error.errno == EOPNOTSUPP {
            // The file system cannot preallocate (ramfs, some FUSE): zero-filling still
            // allocates; `.allocated` leaves a plain file that grows as it is written.
        }
        if mode == .zeroFilled {
            // Zero-fill through O_DIRECT where possible, so the zeros do not crowd the page cache.
            let writer = direct ? (try? Syscall.open(path, flags: O_WRONLY | CLiburing_O_DIRECT)) ?? fd : fd
            defer { if writer != fd { Syscall.close(writer) } }
            let chunk = AlignedBuffer(capacity: 1 << 20)
            memset(chunk.base, 0, chunk.capacity)
            var offset: Int64 = 0
            while offset < size {
                let length = Int(min(Int64(chunk.capacity), AlignedBuffer.alignUp(size - offset)))
                try Syscall.pwriteAll(writer, UnsafeRawBufferPointer(chunk.slice(0..<length)), offset: offset, path: path)
                offset += Int64(length)
            }
            if offset > size { try Syscall.ftruncate(fd, length: size, path: path) }
        }
        try Syscall.fsync(fd, path: path)
    }
}
