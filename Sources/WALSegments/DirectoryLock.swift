import Glibc
import Synchronization
import WALFormat
import WALIO

/// Exclusive ownership of a WAL directory for one writer: an advisory `flock(LOCK_EX)` on the
/// directory itself, held from open to close.
///
/// Two writers appending to one log would interleave LSNs and overwrite each other's tails,
/// so a second `SegmentedWAL` on the same directory — in another process or this one — fails
/// with ``WALError/directoryLocked(path:)`` instead. The kernel drops the lock when the
/// process dies, so a crash never leaves the directory locked. Readers (`records(in:)`)
/// take no lock.
///
/// The lock belongs to the open file description, which a child process shares from fork
/// until its exec closes the (close-on-exec) descriptor. Closing our descriptor alone would
/// leave the directory locked for that moment — a reopen racing another thread's
/// `posix_spawn` then failed with `directoryLocked` (seen in CI). ``release()`` therefore
/// unlocks explicitly (`LOCK_UN` acts on the shared description) before closing.
package final class DirectoryLock: Sendable {
    let path: String
    private let descriptor: Mutex<Int32?>

    package init(directory: String) throws(WALError) {
        let fd = try Syscall.open(directory, flags: O_RDONLY | O_DIRECTORY)
        do {
            try Syscall.flock(fd, LOCK_EX | LOCK_NB, path: directory)
        } catch where error.errno == EWOULDBLOCK {
            Syscall.close(fd)
            throw WALError.directoryLocked(path: directory)
        } catch {
            Syscall.close(fd)
            throw error
        }
        path = directory
        descriptor = Mutex(fd)
    }

    /// Releases the lock (closing the descriptor drops it). Later calls do nothing.
    package func release() {
        let fd = descriptor.withLock { fd in
            defer { fd = nil }
            return fd
        }
        if let fd {
            try? Syscall.flock(fd, LOCK_UN, path: path)
            Syscall.close(fd)
        }
    }

    deinit { release() }
}
