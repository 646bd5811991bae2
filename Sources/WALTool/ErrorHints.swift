import Foundation
import Glibc
import WAL

/// What to do next about a ``WALError``: the tool prints the error's description followed by
/// one of these hints, on the same line, wherever there is something to do.
enum ErrorHints {
    /// The error's description with its hint, if any.
    static func message(for error: WALError, directory: String?) -> String {
        guard let hint = hint(for: error, directory: directory) else { return error.description }
        return "\(error.description) — \(hint)"
    }

    /// A hint for `error` met by a command working on `directory`; nil when there is nothing to
    /// say. `verifying` leaves out the advice to run `wal verify`, for `wal verify` itself.
    static func hint(for error: WALError, directory: String?, verifying: Bool = false) -> String? {
        let dir = directory ?? "DIR"
        let verify = verifying ? "" : "; `wal verify \(dir)` lists every problem of the log"
        switch error {
        case .failed(let cause):
            return hint(for: cause, directory: directory, verifying: verifying)
                ?? "reopen the WAL directory to recover every acknowledged record"
        case .directoryLocked(let path):
            let reading = "reading commands (`wal dump`, `wal verify`, `wal segments`) need no lock and work meanwhile"
            guard let holder = LockHolder.find(path) else {
                return "another process has the WAL open for writing: stop it or let it close the WAL first; \(reading)"
            }
            return "held by pid \(holder.pid)\(holder.command.map { " (\($0))" } ?? ""): stop that process or let it close the WAL first; \(reading)"
        case .lsnGap(let segment, let expected, let found):
            return lsnGapHint(segment: segment, expected: expected, found: found, directory: directory) + verify
        case .corruption(let segment, _, let lsn, _):
            return "the records before LSN \(lsn) are intact; restore \(segment) from a backup or a replica (the WAL never skips damaged records)\(verify)"
        case .unknownKey(let id, let segment):
            return "\(segment) needs the key with id \(id): add `--key-file PATH:\(id)` (repeat --key-file for every key the log was written with; the first is the current one)"
        case .authenticationFailed(let segment, _):
            return "check that the --key-file given for \(segment)'s key id (`wal segments \(dir)` shows it) is the key it was written with; if it is, the segment was altered: restore it from a backup or a replica"
        case .encryptedRecordWithoutKey(let segment, _):
            return "pass the key of \(segment) with --key-file PATH:ID (`wal segments \(dir)` shows its key id)"
        case .unknownRequiredRecordType(let type, _, _):
            let value = "0x" + String(type, radix: 16, uppercase: true)
            return "the application that wrote the log defines type \(value); `wal dump \(dir) --type \(value)` reads records of that type"
        case .unsupportedFormatVersion:
            return "the log was written by a newer swift-wal: use a `wal` built from that version or later"
        case .truncatedWhileReading:
            return "the writer truncated the log meanwhile; start again with --from at or above the first LSN still retained (`wal segments \(dir)`)"
        case .truncated(let after):
            return "start again with --from \(after + 1) or lower"
        case .logReset(let to):
            return "the log continues at LSN \(to + 1); read from there (what came before is in the snapshot the reset installed)"
        case .notASegmentFile(let path, _):
            return "move \(path) out of the WAL directory: entries named like segments must be segment files"
        case .invalidKey:
            return "a key file holds exactly 32 raw bytes (for a new key: `head -c 32 /dev/urandom > FILE`)"
        case .directIOUnsupported:
            return "use --direct-io automatic (buffered I/O where O_DIRECT is refused) or a directory on another file system"
        case .engineUnavailable:
            return "use --engine automatic (the POSIX engine where io_uring cannot run)"
        case .io(_, let code, let path):
            switch code {
            case ENOENT: return "check the path: \(path) does not exist"
            case EACCES, EPERM: return "run as a user allowed to access \(path)"
            case ENOTDIR: return "check the path: a component of \(path) is not a directory"
            case ENOSPC, EDQUOT: return "free space on the file system holding \(path)"
            default: return nil
            }
        case .payloadTooLarge, .closed, .lsnNotAppended, .invalidConfiguration, .invalidArgument:
            return nil
        }
    }

    /// Records `expected`...`found - 1` are missing. At the start of a segment, they lie between
    /// that segment and the one before it (or the segment that should hold them is gone);
    /// inside a segment, the segment itself skips them.
    private static func lsnGapHint(segment: String, expected: LSN, found: LSN, directory: String?) -> String {
        let missing = found > expected + 1 ? "the records with LSNs \(expected)…\(found - 1) are" : "the record with LSN \(expected) is"
        let names = directory.map(segmentNames) ?? []
        if let index = names.firstIndex(of: segment), firstLSN(of: segment) == found {
            guard index > 0 else {
                return "\(missing) missing before \(segment), which starts at LSN \(found): restore the missing records from a backup or a replica"
            }
            let previous = names[index - 1]
            return "\(missing) missing between \(previous) (its records end at LSN \(expected - 1)) and \(segment) (which starts at LSN \(found)): a segment between them is gone, or \(previous) lost its end; restore the missing records from a backup or a replica"
        }
        if firstLSN(of: segment) == expected {
            return "the first record of \(segment) has LSN \(found) where its name says \(expected): restore \(segment) from a backup or a replica"
        }
        return "\(missing) missing inside \(segment) (the record after LSN \(expected - 1) has LSN \(found)): restore \(segment) from a backup or a replica"
    }

    /// The segment file names in `directory` (`wal-<20 digits>.seg`), oldest first.
    private static func segmentNames(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { firstLSN(of: $0) != nil }.sorted()
    }

    /// The first LSN a segment's name gives, or nil for other names.
    private static func firstLSN(of name: String) -> LSN? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".seg") else { return nil }
        let digits = name.dropFirst(4).dropLast(4)
        guard digits.count == 20, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return LSN(digits)
    }
}

/// The process holding a `flock` on a path, as the kernel lists it in /proc/locks — what the
/// WAL's directory lock is, so no lock file is needed to name the holder.
enum LockHolder {
    /// The holder's pid and command name; nil when /proc/locks is unreadable or lists no
    /// holder visible from this process (another pid namespace).
    static func find(_ path: String) -> (pid: Int32, command: String?)? {
        var info = stat()
        guard stat(path, &info) == 0,
              let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        // glibc's dev_t encoding (gnu_dev_major / gnu_dev_minor); /proc/locks prints major and
        // minor in hex and the inode in decimal: "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF".
        let dev = UInt64(info.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
        let minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // Lines of waiters have "->" after the id; a LOCK_NB caller never waits, but skip them.
            guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]), pid > 0 else { continue }
            let device = fields[5].split(separator: ":")
            guard device.count == 3, UInt64(device[0], radix: 16) == major, UInt64(device[1], radix: 16) == minor,
                  UInt64(device[2]) == UInt64(info.st_ino) else { continue }
            let command = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return (pid, command)
        }
        return nil
    }
}
