import Glibc
import WALFormat
import WALIO

package enum LegacyMigration {
    /// Moves a single-file WAL into `directory` as its first segment, the seed's way:
    /// renamed to `wal-<its first LSN>.seg` (LSN 1 when it holds no record), or removed
    /// when it is empty. Returns the segment's path, or nil when nothing was migrated.
    package static func migrate(legacyFile: String, into directory: String) throws(WALError) -> String? {
        guard let type = try Syscall.fileType(legacyFile) else { return nil }
        guard type == S_IFREG else {
            throw WALError.invalidConfiguration("legacy WAL \(legacyFile) is not a regular file")
        }
        let file = try SegmentFile.openForReading(path: legacyFile)
        let size = try file.size()
        if size == 0 {
            file.close()
            try Syscall.unlink(legacyFile)
            try Syscall.fsyncDirectory(FilePaths.parent(of: legacyFile))
            return nil
        }
        let scanner = try SegmentScanner(file: file)
        var firstLSN: LSN = 1
        if case .record(let header, _, _) = try scanner.next() { firstLSN = header.lsn }
        file.close()
        try Syscall.makeDirectories(directory)
        let target = SegmentDirectory.path(directory, firstLSN: firstLSN)
        if try Syscall.fileType(target) != nil {
            throw WALError.invalidConfiguration("cannot migrate \(legacyFile): \(target) already exists")
        }
        try Syscall.rename(legacyFile, target)
        try Syscall.fsyncDirectory(directory)
        let legacyParent = FilePaths.parent(of: legacyFile)
        if legacyParent != directory { try Syscall.fsyncDirectory(legacyParent) }
        return target
    }
}
