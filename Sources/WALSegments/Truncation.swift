import WALFormat
import WALIO

/// What ``SegmentedWAL/truncate(before:)`` removed.
public struct TruncationResult: Sendable, Equatable {
    /// How many sealed segments were deleted.
    public var segmentsDeleted: Int
    /// The bytes those segments occupied.
    public var bytesReclaimed: Int64

    /// A result with these counts.
    public init(segmentsDeleted: Int, bytesReclaimed: Int64) {
        self.segmentsDeleted = segmentsDeleted
        self.bytesReclaimed = bytesReclaimed
    }
}

package enum Truncation {
    /// Deletes every sealed segment whose records all lie below `checkpoint`: segment *i* goes
    /// when segment *i+1* starts at or below `checkpoint` (the seed's rule). The segment starting
    /// at `activeFirstLSN`, and anything after it, is never deleted. The directory is fsynced
    /// after deletions so they survive a crash.
    package static func truncate(directory: String, before checkpoint: LSN, activeFirstLSN: LSN) throws(WALError) -> TruncationResult {
        let segments = try SegmentDirectory.discover(directory)
        var result = TruncationResult(segmentsDeleted: 0, bytesReclaimed: 0)
        for index in segments.indices.dropLast() {
            let segment = segments[index]
            let nextFirst = segments[index + 1].firstLSN
            guard segment.firstLSN < activeFirstLSN, nextFirst <= checkpoint else { break }
            try Syscall.unlink(segment.path)
            result.segmentsDeleted += 1
            result.bytesReclaimed += segment.size
        }
        if result.segmentsDeleted > 0 { try Syscall.fsyncDirectory(directory) }
        return result
    }
}
