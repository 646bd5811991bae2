extension SegmentedWAL {
    /// Each segment's LSN range, record count, size, state and encryption, read without
    /// opening the WAL for writing (no lock, no repair).
    public static func inspectSegments(in directory: String) throws(WALError) -> [SegmentSummary] {
        try Inspection.summarize(directory)
    }

    /// Reads the whole log with the replay rules — CRCs, LSN continuity, segment names, record
    /// types, and (with `keyRing`) the authentication of every encrypted record — and reports
    /// every problem with its segment, offset and LSN. Nothing is repaired and no lock is taken.
    public static func verify(directory: String, keyRing: KeyRing? = nil,
                              recordTypes: Set<RecordType> = RecordType.seedTypes) -> VerificationReport {
        Inspection.verify(directory, keyRing: keyRing, recordTypes: recordTypes)
    }
}

/// A cut of the log's end that was recorded and not finished: a crash (or an I/O error)
/// interrupted ``SegmentedWAL/truncate(after:)`` or ``SegmentedWAL/reset(to:)`` after its
/// intent was durable. Readers already see the log as cut; the next open finishes the cut.
public struct PendingCut: Sendable, Equatable {
    /// Which call recorded it.
    public enum Kind: String, Sendable {
        /// ``SegmentedWAL/truncate(after:)``: the records above ``PendingCut/lsn`` go.
        case truncateAfter = "truncate-after"
        /// ``SegmentedWAL/reset(to:)``: every record goes; the next gets ``PendingCut/lsn`` + 1.
        case reset
    }

    /// Which call recorded it.
    public var kind: Kind
    /// The last kept LSN (truncate), or the one before the next (reset).
    public var lsn: LSN
}

extension SegmentedWAL {
    /// The cut of the log's end recorded in `directory` and not yet finished, if any.
    /// - Throws: ``WALError/corruption(segment:offset:lsn:reason:)`` for a damaged intent file.
    public static func pendingCut(in directory: String) throws(WALError) -> PendingCut? {
        try LogCut.pending(in: directory).map {
            PendingCut(kind: $0.kind == .reset ? .reset : .truncateAfter, lsn: $0.lsn)
        }
    }

    /// Whether `directory` holds durable metadata (``setMetadata(_:)``), without reading it.
    public static func hasMetadata(in directory: String) throws(WALError) -> Bool {
        try Syscall.fileType(FilePaths.join(directory, MetadataFile.name)) != nil
    }
}
