import CLiburing
import Glibc
import WALFormat

/// The one place where system calls are made and errno is read.
///
/// Each wrapper is `@inline(never)` so that nothing runs between the call and reading errno,
/// retries EINTR itself, and turns any other failure into ``WALError/io(operation:errno:path:)``
/// naming the call and the path. Programmer errors (EBADF, EFAULT) are bugs and trap.
package enum Syscall {
    /// `forbiddingEINVAL`: a transfer on an O_DIRECT descriptor, where EINVAL means a
    /// misaligned buffer, length or offset — a bug in the caller, not an I/O failure — and
    /// traps (swift-nio's `syscallForbiddingEINVAL`).
    @inline(never)
    private static func call<T: BinaryInteger>(_ operation: String, path: String, forbiddingEINVAL: Bool = false,
                                               _ body: () -> T) throws(WALError) -> T {
        if let code = TestHooks.fault(operation, path) {
            throw WALError.io(operation: operation, errno: code, path: path)
        }
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = CLiburing_errno()
            if code == EINTR { continue }
            precondition(code != EBADF && code != EFAULT, "\(operation) on \(path): programmer error, errno \(code)")
            precondition(!(forbiddingEINVAL && code == EINVAL), "\(operation) on \(path): EINVAL on an O_DIRECT descriptor (misaligned transfer)")
            throw WALError.io(operation: operation, errno: code, path: path)
        }
    }

    package static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(WALError) -> Int32 {
        let fd = try call("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        if flags & O_CREAT != 0 { TestHooks.observe(.create(path: path)) }
        return fd
    }

    package static func close(_ fd: Int32) {
        // close(2) must not be retried on EINTR on Linux: the descriptor is gone either way.
        _ = Glibc.close(fd)
    }

    /// Writes all of `buffer` at `offset`, continuing after short writes.
    package static func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int64, path: String,
                          direct: Bool = false) throws(WALError) {
        var done = 0
        while done < buffer.count {
            let wanted = TestHooks.writeLimit(path, buffer.count - done)
            let n = try call("pwrite", path: path, forbiddingEINVAL: direct) {
                Glibc.pwrite(fd, buffer.baseAddress! + done, wanted, off_t(offset) + off_t(done))
            }
            // A zero-byte write of a non-empty buffer makes no progress; report it rather than spin.
            if n == 0 { throw WALError.io(operation: "pwrite", errno: EIO, path: path) }
            TestHooks.observe(.write(path: path, offset: offset + Int64(done), bytes: Array(UnsafeRawBufferPointer(rebasing: buffer[done..<(done + n)]))))
            done += n
        }
    }

    /// Reads until `buffer` is full or the file ends; returns fewer bytes than asked only when
    /// the read reached the file's size.
    ///
    /// A short read is not taken as the end of the file: FUSE and NFS (with direct I/O too) may
    /// return fewer bytes, or none, before it. After a short read the file's size is looked up
    /// (fstat) and the read continues while it is not reached — with O_DIRECT from the last
    /// block boundary, so that the offset stays aligned. A file that keeps reading without
    /// progress below its size is an I/O error (EIO), never a short file: recovery would
    /// otherwise cut records it merely failed to read.
    package static func preadFull(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int64, path: String,
                          direct: Bool = false) throws(WALError) -> Int {
        var done = 0
        var stalls = 0
        while done < buffer.count {
            let start = done
            let asked = buffer.count - done
            var wanted = TestHooks.readLimit(path, asked)
            if direct && wanted > 0 {
                // O_DIRECT transfers whole blocks: an injected short read is cut to them.
                wanted = max(AlignedBuffer.alignment, wanted & ~(AlignedBuffer.alignment - 1))
            }
            let n = wanted == 0 ? 0 : try call("pread", path: path, forbiddingEINVAL: direct) {
                Glibc.pread(fd, buffer.baseAddress! + done, wanted, off_t(offset) + off_t(done))
            }
            done += n
            if n == asked { continue }
            // Short: the end of the file, or a file system that returned less than it has.
            let size = try fileSize(fd, path: path)
            if offset + Int64(done) >= size { return min(done, Int(max(0, size - offset))) }
            if direct { done = done & ~(AlignedBuffer.alignment - 1) }
            // No progress (nothing read, or with O_DIRECT less than a block, re-read from the
            // same boundary): a few times is a slow file system, always is a broken one.
            if done <= start {
                stalls += 1
                if stalls > 8 { throw WALError.io(operation: "pread", errno: EIO, path: path) }
            } else {
                stalls = 0
            }
        }
        return done
    }

    package static func fdatasync(_ fd: Int32, path: String) throws(WALError) {
        _ = try call("fdatasync", path: path) { Glibc.fdatasync(fd) }
        TestHooks.observe(.sync(path: path))
    }

    package static func fsync(_ fd: Int32, path: String) throws(WALError) {
        _ = try call("fsync", path: path) { Glibc.fsync(fd) }
        TestHooks.observe(.sync(path: path))
    }

    package static func ftruncate(_ fd: Int32, length: Int64, path: String) throws(WALError) {
        _ = try call("ftruncate", path: path) { Glibc.ftruncate(fd, off_t(length)) }
        TestHooks.observe(.truncate(path: path, length: length))
    }

    package static func fallocate(_ fd: Int32, mode: Int32, offset: Int64, length: Int64, path: String) throws(WALError) {
        _ = try call("fallocate", path: path) { CLiburing_fallocate(fd, mode, off_t(offset), off_t(length)) }
        if mode == 0 { TestHooks.observe(.allocate(path: path, length: offset + length)) }
    }

    /// The size of the file at `path`, or nil when it is gone.
    package static func fileSize(atPath path: String) throws(WALError) -> Int64? {
        var st = stat()
        do {
            _ = try call("stat", path: path) { CLiburing_stat(path, &st) }
        } catch where error.errno == ENOENT {
            return nil
        }
        return Int64(st.st_size)
    }

    package static func fileSize(_ fd: Int32, path: String) throws(WALError) -> Int64 {
        var st = stat()
        _ = try call("fstat", path: path) { Glibc.fstat(fd, &st) }
        return Int64(st.st_size)
    }

    package static func flock(_ fd: Int32, _ operation: Int32, path: String) throws(WALError) {
        _ = try call("flock", path: path) { CLiburing_flock(fd, operation) }
    }

    package static func rename(_ from: String, _ to: String) throws(WALError) {
        _ = try call("rename", path: from) { Glibc.rename(from, to) }
        TestHooks.observe(.rename(from: from, to: to))
    }

    package static func unlink(_ path: String) throws(WALError) {
        _ = try call("unlink", path: path) { Glibc.unlink(path) }
        TestHooks.observe(.unlink(path: path))
    }

    static func mkdir(_ path: String) throws(WALError) {
        do {
            _ = try call("mkdir", path: path) { Glibc.mkdir(path, 0o755) }
        } catch where error.errno == EEXIST {
            return
        }
    }

    /// The kind of file at `path` (following links), or nil when nothing is there.
    package static func fileType(_ path: String) throws(WALError) -> mode_t? {
        var st = stat()
        do {
            _ = try call("stat", path: path) { CLiburing_stat(path, &st) }
        } catch where error.errno == ENOENT {
            return nil
        }
        return st.st_mode & S_IFMT
    }

    /// The kind of the entry at `path` itself (a symbolic link is `S_IFLNK`), or nil when
    /// nothing is there.
    package static func entryType(_ path: String) throws(WALError) -> mode_t? {
        var st = stat()
        do {
            _ = try call("lstat", path: path) { CLiburing_lstat(path, &st) }
        } catch where error.errno == ENOENT {
            return nil
        }
        return st.st_mode & S_IFMT
    }

    /// Creates `path` and any missing parents (like `mkdir -p`), fsyncing each parent that gained an entry.
    package static func makeDirectories(_ path: String) throws(WALError) {
        if try fileType(path) == S_IFDIR { return }
        let parent = FilePaths.parent(of: path)
        if parent != path { try makeDirectories(parent) }
        try mkdir(path)
        try fsyncDirectory(parent)
    }

    /// Makes a directory's entries (creations, renames, deletions) durable.
    package static func fsyncDirectory(_ path: String) throws(WALError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        _ = try call("fsync", path: path) { Glibc.fsync(fd) }
        TestHooks.observe(.syncDirectory(path: path))
    }

    /// Bytes available to unprivileged users on the file system holding `path` (statvfs), or
    /// nil where the file system does not say.
    package static func availableBytes(onFileSystemOf path: String) throws(WALError) -> Int64? {
        var info = statvfs()
        _ = try call("statvfs", path: path) { CLiburing_statvfs(path, &info) }
        // ramfs and some virtual file systems report no blocks at all: no limit is known.
        guard info.f_frsize > 0, info.f_blocks > 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Names in a directory, without "." and "..".
    package static func listDirectory(_ path: String) throws(WALError) -> [String] {
        guard let dir = opendir(path) else {
            throw WALError.io(operation: "opendir", errno: CLiburing_errno(), path: path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}


/// A change to a file or directory, as reported to ``TestHooks/observer``.
enum SyscallEvent: Sendable {
    case create(path: String)
    case write(path: String, offset: Int64, bytes: [UInt8])
    /// A write durable by itself (`RWF_DSYNC`, io_uring) was submitted: from now on any part of it
    /// may be on the device, in any order, beside other such writes of other blocks;
    /// ``durableWriteCompleted(path:offset:count:)`` says which bytes are durable.
    case durableWriteIssued(path: String, offset: Int64, bytes: [UInt8])
    /// `count` bytes at `offset` of a write issued as ``durableWriteIssued(path:offset:bytes:)``
    /// completed, so they are durable (the rest, after a short write, is still in flight).
    case durableWriteCompleted(path: String, offset: Int64, count: Int)
    case truncate(path: String, length: Int64)
    /// fallocate without KEEP_SIZE: the file is at least `length` bytes long (reading zeros).
    case allocate(path: String, length: Int64)
    /// fsync or fdatasync of a file: its data written so far is durable.
    case sync(path: String)
    /// An fdatasync was issued (io_uring, several flushes in flight): it covers the file's data
    /// written so far, and nothing written after this event. `id` names it in ``syncFinished(path:id:)``.
    case syncStarted(path: String, id: Int)
    /// The fdatasync issued at ``syncStarted(path:id:)`` with this `id` completed: what was written
    /// before it started is durable (writes since may or may not be).
    case syncFinished(path: String, id: Int)
    case rename(from: String, to: String)
    case unlink(path: String)
    /// fsync of a directory: its entries (creations, renames, unlinks) are durable.
    case syncDirectory(path: String)
}

/// Path helpers that need no Foundation.
package enum FilePaths {
    package static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    package static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    package static func lastComponent(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }
}
