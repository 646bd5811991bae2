import CLiburing
import Glibc
import Logging
import WALFormat

/// Whether segment files bypass the page cache.
public enum DirectIOPolicy: String, Sendable, CaseIterable {
    /// O_DIRECT where the file system accepts it; buffered I/O otherwise, logged once per WAL.
    case automatic
    /// O_DIRECT or ``WALError/directIOUnsupported(path:)``.
    case required
    /// Buffered I/O (the page cache holds what was written).
    case disabled
}

/// An open segment file: its descriptor, its path, and whether it bypasses the page cache.
package final class SegmentFile {
    package let descriptor: Int32
    package let path: String
    package let isDirect: Bool
    private var isClosed = false

    private init(descriptor: Int32, path: String, isDirect: Bool) {
        self.descriptor = descriptor
        self.path = path
        self.isDirect = isDirect
    }

    /// Opens (or creates, with `create`) a segment for reading and writing.
    ///
    /// The file is first opened (and created) without O_DIRECT, then reopened with it: an
    /// O_DIRECT create that the file system refuses would leave the file behind, and an
    /// exclusive create could then not be retried. EINVAL from the O_DIRECT open means the
    /// file system refuses it (ramfs; tmpfs before Linux 6.6), which `.automatic` answers by
    /// keeping the buffered descriptor and `.required` by throwing.
    ///
    /// Any failure leaves nothing behind: no descriptor, and no file when this call created it
    /// (so that an exclusive create can be retried — a rollover that hit EMFILE on the reopen
    /// must not find its own leftover with EEXIST at every later attempt).
    package static func open(path: String, create: Bool, exclusive: Bool = false, directIO: DirectIOPolicy, logger: Logger) throws(WALError) -> SegmentFile {
        var flags = O_RDWR
        if create { flags |= O_CREAT }
        if exclusive { flags |= O_EXCL }
        let buffered = try Syscall.open(path, flags: flags)
        guard directIO != .disabled else { return SegmentFile(descriptor: buffered, path: path, isDirect: false) }
        do {
            let direct = try Syscall.open(path, flags: O_RDWR | CLiburing_O_DIRECT)
            Syscall.close(buffered)
            return SegmentFile(descriptor: direct, path: path, isDirect: true)
        } catch where error.errno == EINVAL && directIO == .automatic {
            logger.info("file system refuses O_DIRECT; using buffered I/O", metadata: ["path": "\(path)"])
            return SegmentFile(descriptor: buffered, path: path, isDirect: false)
        } catch {
            Syscall.close(buffered)
            if create && exclusive { try? Syscall.unlink(path) }
            throw error.errno == EINVAL ? WALError.directIOUnsupported(path: path) : error
        }
    }

    /// Opens a segment read-only: through the page cache (replay and inspection), or with
    /// O_DIRECT when `direct` is set and the file system accepts it (a tailer reading the
    /// segment the writer is writing with O_DIRECT: pages it cached would make every later
    /// direct write there invalidate them, and io_uring hand such writes to a worker thread).
    package static func openForReading(path: String, direct: Bool = false) throws(WALError) -> SegmentFile {
        if direct {
            do {
                let fd = try Syscall.open(path, flags: O_RDONLY | CLiburing_O_DIRECT)
                return SegmentFile(descriptor: fd, path: path, isDirect: true)
            } catch where error.errno == EINVAL {
                // Not on this file system: read through the page cache.
            }
        }
        let fd = try Syscall.open(path, flags: O_RDONLY)
        return SegmentFile(descriptor: fd, path: path, isDirect: false)
    }

    package func size() throws(WALError) -> Int64 { try Syscall.fileSize(descriptor, path: path) }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only where the file ends (short
    /// reads before its end are continued: ``Syscall/preadFull(_:_:offset:path:direct:)``).
    /// With O_DIRECT, `buffer` and `offset` must be block-aligned (asserted).
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(WALError) -> Int {
        AlignedBuffer.assertAligned(UnsafeRawBufferPointer(start: buffer.baseAddress, count: buffer.count), offset: offset,
                                    direct: isDirect)
        return try Syscall.preadFull(descriptor, buffer, offset: offset, path: path, direct: isDirect)
    }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        Syscall.close(descriptor)
    }

    deinit { close() }
}
