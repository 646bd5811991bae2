import Glibc
import WALFormat
import WALIO

/// What is known of one segment file without reading its records.
public struct SegmentInfo: Sendable, Equatable {
    /// The LSN of its first record, from its name.
    public var firstLSN: LSN
    /// The full path of the file.
    public var path: String
    /// The file's size in bytes.
    public var size: Int64
    /// Whether this is the newest segment (the one appended to); all others are sealed.
    public var isActive: Bool

    /// The file name, `wal-<20 digits>.seg`.
    public var name: String { FilePaths.lastComponent(path) }
}

/// Discovery: the segments of a WAL directory, oldest first.
package enum SegmentDirectory {
    /// Lists the segment files in `directory` in LSN order. Entries whose names are not
    /// segment names (of any kind: `lost+found`, editor backups) are ignored. An entry with a
    /// segment's name must be a regular file or a symbolic link to one: a directory, FIFO,
    /// socket, device or dangling link there means the log is not what it claims, and
    /// ``WALError/notASegmentFile(path:kind:)`` says so rather than skipping what could be a
    /// lost segment. A segment deleted while listing (concurrent truncation) is skipped.
    package static func discover(_ directory: String) throws(WALError) -> [SegmentInfo] {
        var found: [(LSN, String)] = []
        for name in try Syscall.listDirectory(directory) {
            guard let lsn = SegmentName.parse(name) else { continue }
            guard LSNDomain.contains(lsn) else {
                throw WALError.corruption(segment: name, offset: 0, lsn: lsn,
                                          reason: "the segment's name gives LSN \(lsn), outside \(LSNDomain.first)...\(LSNDomain.last)")
            }
            let path = FilePaths.join(directory, name)
            switch try Syscall.fileType(path) {
            case S_IFREG:
                found.append((lsn, path))
            case nil:
                // Gone since the listing (truncation), or a link to nothing.
                if try Syscall.entryType(path) == nil { continue }
                throw WALError.notASegmentFile(path: path, kind: "a dangling symbolic link")
            case let type?:
                throw WALError.notASegmentFile(path: path, kind: Self.describe(type))
            }
        }
        found.sort { $0.0 < $1.0 }
        var segments: [SegmentInfo] = []
        segments.reserveCapacity(found.count)
        for (index, (lsn, path)) in found.enumerated() {
            // A segment deleted meanwhile (truncation) is reported with size 0.
            let size = try Syscall.fileSize(atPath: path) ?? 0
            segments.append(SegmentInfo(firstLSN: lsn, path: path, size: size, isActive: index == found.count - 1))
        }
        return segments
    }

    private static func describe(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "not a regular file"
        }
    }

    static func path(_ directory: String, firstLSN: LSN) -> String {
        FilePaths.join(directory, SegmentName.make(firstLSN: firstLSN))
    }
}
