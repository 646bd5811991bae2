import Glibc

/// Every error the WAL throws. Each case carries what a caller needs to act on it.
public enum WALError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed. `operation` names the call (`pwrite`, `fdatasync`, `open`, ...).
    case io(operation: String, errno: Int32, path: String)
    /// A record inside the log is damaged where the log cannot legitimately end:
    /// anywhere in a sealed segment, or a segment whose records do not match its name.
    case corruption(segment: String, offset: Int64, lsn: LSN, reason: String)
    /// The LSN sequence skips: `expected` was due, `found` came next.
    case lsnGap(segment: String, expected: LSN, found: LSN)
    /// A record has a type with the required bit that this WAL does not know.
    case unknownRequiredRecordType(type: UInt16, lsn: LSN, segment: String)
    /// A record was written by a newer format version than this reader supports.
    case unsupportedFormatVersion(version: UInt16, segment: String, offset: Int64)
    /// A payload is larger than the format allows (64 MiB). The WAL stays usable.
    case payloadTooLarge(size: Int, limit: Int)
    /// The WAL was closed.
    case closed
    /// An earlier write or sync failed, so nothing after it can be proven durable;
    /// the WAL refuses further work until it is reopened. Carries the original failure.
    indirect case failed(WALError)
    /// A wait for durability named an LSN that has not been appended (yet): waiting for it
    /// could last forever.
    case lsnNotAppended(lsn: LSN, nextLSN: LSN)
    /// The configuration demands O_DIRECT but the file system refuses it (tmpfs, for example).
    case directIOUnsupported(path: String)
    /// A reader reached a segment that truncation deleted after the reader started: the
    /// records from `lsn` on that it still wanted are gone. Readers that need old records must
    /// keep the checkpoint passed to `truncate(before:)` at or below their position.
    case truncatedWhileReading(segment: String, lsn: LSN)
    /// The log was cut after `after` (``SegmentedWAL/truncate(after:)``) while a reader stood
    /// above it, or before a commit's record was durable: the records above `after` are gone,
    /// and the LSNs after it will be given to new records. A tailer must go back to `after` + 1
    /// (and drop what it took from above it); a committer's record was not kept.
    case truncated(after: LSN)
    /// The log was reset (``SegmentedWAL/reset(to:)``, installing a snapshot) while a reader
    /// stood anywhere but at `to` + 1, or before a commit's record was durable: every earlier
    /// record is gone, and the log continues at `to` + 1.
    case logReset(to: LSN)
    /// An entry named like a segment is not a regular file (`kind` says what it is: a
    /// directory, a FIFO, a dangling symbolic link, ...).
    case notASegmentFile(path: String, kind: String)
    /// Another `SegmentedWAL` (in this process or another) has the directory open for writing.
    case directoryLocked(path: String)
    /// The configuration is not usable.
    case invalidConfiguration(String)
    /// An argument is outside what the call accepts (the message says which and why).
    case invalidArgument(String)
    /// The requested I/O engine cannot run here (for example io_uring forbidden by seccomp).
    case engineUnavailable(engine: String, reason: String)
    /// An encrypted record failed authentication: wrong key or epoch, or its header, ciphertext,
    /// tag or the segment's preamble was changed. No bytes of it are returned.
    case authenticationFailed(segment: String, lsn: LSN)
    /// A segment's preamble names a key the key ring does not hold.
    case unknownKey(id: UInt8, segment: String)
    /// Plaintext was required but a record is encrypted and no key ring is configured.
    case encryptedRecordWithoutKey(segment: String, lsn: LSN)
    /// A key of the wrong size or an unreadable key file.
    case invalidKey(String)

    /// The errno of an I/O failure, if there is one (also through ``failed(_:)``).
    public var errno: Int32? {
        switch self {
        case .io(_, let code, _): return code
        case .failed(let inner): return inner.errno
        default: return nil
        }
    }

    /// One line naming what failed and where: segment, offset, LSN, path or errno.
    public var description: String {
        switch self {
        case .io(let operation, let code, let path):
            return "\(operation) failed on \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .corruption(let segment, let offset, let lsn, let reason):
            return "corrupt WAL: \(reason) in \(segment) at offset \(offset) (LSN \(lsn))"
        case .lsnGap(let segment, let expected, let found):
            return "corrupt WAL: LSN gap in \(segment): expected LSN \(expected), found \(found)"
        case .unknownRequiredRecordType(let type, let lsn, let segment):
            return "unknown required record type 0x\(String(type, radix: 16, uppercase: true)) at LSN \(lsn) in \(segment)"
        case .unsupportedFormatVersion(let version, let segment, let offset):
            return "record format version \(version) in \(segment) at offset \(offset) is newer than supported (\(RecordHeader.formatVersion))"
        case .payloadTooLarge(let size, let limit):
            return "payload of \(size) bytes exceeds the limit of \(limit) bytes"
        case .closed:
            return "the WAL is closed"
        case .failed(let cause):
            return "the WAL refuses further writes after an earlier failure: \(cause)"
        case .lsnNotAppended(let lsn, let nextLSN):
            return "LSN \(lsn) has not been appended (the next LSN is \(nextLSN))"
        case .directIOUnsupported(let path):
            return "O_DIRECT was required but the file system of \(path) refuses it"
        case .truncatedWhileReading(let segment, let lsn):
            return "\(segment) (records from LSN \(lsn)) was deleted by truncation while being read"
        case .truncated(let after):
            return "the log was truncated after LSN \(after): the records above it are gone"
        case .logReset(let to):
            return "the log was reset: it continues at LSN \(to + 1), every earlier record is gone"
        case .notASegmentFile(let path, let kind):
            return "\(path) is named like a segment but is \(kind)"
        case .directoryLocked(let path):
            return "\(path) is in use by another writer (its advisory lock is held)"
        case .invalidConfiguration(let message):
            return "invalid WAL configuration: \(message)"
        case .invalidArgument(let message):
            return "invalid argument: \(message)"
        case .engineUnavailable(let engine, let reason):
            return "the \(engine) I/O engine is unavailable: \(reason)"
        case .authenticationFailed(let segment, let lsn):
            return "encrypted record LSN \(lsn) in \(segment) failed authentication (wrong key, or tampered data)"
        case .unknownKey(let id, let segment):
            return "\(segment) is encrypted with key id \(id), which is not in the key ring"
        case .encryptedRecordWithoutKey(let segment, let lsn):
            return "record LSN \(lsn) in \(segment) is encrypted and no key ring is configured"
        case .invalidKey(let message):
            return "invalid encryption key: \(message)"
        }
    }
}
