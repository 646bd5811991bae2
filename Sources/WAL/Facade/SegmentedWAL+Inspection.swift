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
