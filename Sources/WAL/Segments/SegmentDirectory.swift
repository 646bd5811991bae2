import Glibc

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
enum SegmentDirectory {
    /// Lists the segment files in `directory` in LSN order. Files whose names are not
    /// segment names, and anything that is not a regular file, are ignored.
    static func discover(_ directory: String) throws(WALError) -> [SegmentInfo] {
        var found: [(LSN, String)] = []
        for name in try Syscall.listDirectory(directory) {
            guard let lsn = SegmentName.parse(name) else { continue }
            let path = FilePaths.join(directory, name)
            guard try Syscall.fileType(path) == S_IFREG else { continue }
            found.append((lsn, path))
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

    static func path(_ directory: String, firstLSN: LSN) -> String {
        FilePaths.join(directory, SegmentName.make(firstLSN: firstLSN))
    }
}
