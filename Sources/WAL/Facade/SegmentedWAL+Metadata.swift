import Synchronization

extension SegmentedWAL {
    /// Replaces the WAL's metadata with `bytes` — a small blob the embedding system keeps
    /// beside its log, such as a consensus layer's term, vote and commit index — and returns
    /// once it is durable.
    ///
    /// After a crash, ``metadata()`` returns the blob of the last `setMetadata` that returned,
    /// or of one that was still running: never a torn blob, never an older one. Encrypted with
    /// the current key when ``WALConfiguration/encryption`` is set. Kept in `wal-metadata`
    /// beside the segments (docs/FORMAT.md).
    ///
    /// - Throws: ``WALError/payloadTooLarge(size:limit:)`` above 4,096 bytes (nothing changes);
    ///   ``WALError/closed``; ``WALError/failed(_:)`` once the WAL has failed or after a failed
    ///   metadata write (its sync may have lost data the kernel will not report again, so no
    ///   later write is acknowledged); ``WALError/io(operation:errno:path:)``.
    public func setMetadata(_ bytes: [UInt8]) throws(WALError) {
        guard bytes.count <= MetadataFile.maxSize else {
            throw WALError.payloadTooLarge(size: bytes.count, limit: MetadataFile.maxSize)
        }
        try metadataState.withLock { (state) throws(WALError) in
            if let reason = logWriter.unusableReason { throw reason }
            if let failure = state.failure { throw WALError.failed(failure) }
            let file = try state.file(self)
            do throws(WALError) {
                try file.write(bytes)
            } catch {
                state.failure = error
                throw error
            }
        }
    }

    /// The blob last given to ``setMetadata(_:)``, or nil when none ever was.
    ///
    /// - Throws: ``WALError/corruption(segment:offset:lsn:reason:)`` when the file exists but
    ///   neither copy in it is valid; ``WALError/unknownKey(id:segment:)`` or
    ///   ``WALError/authenticationFailed(segment:lsn:)`` for encrypted metadata;
    ///   ``WALError/closed``.
    public func metadata() throws(WALError) -> [UInt8]? {
        try metadataState.withLock { (state) throws(WALError) -> [UInt8]? in
            if !logWriter.isUsable, logWriter.unusableReason == .closed { throw WALError.closed }
            return try state.file(self).read()
        }
    }
}

/// The WAL's metadata file, opened on first use, and a failed write's error (sticky).
struct MetadataState: ~Copyable {
    private var opened: MetadataFile?
    var failure: WALError?

    init() {}

    mutating func file(_ wal: SegmentedWAL) throws(WALError) -> MetadataFile {
        if let opened { return opened }
        let file = try MetadataFile(directory: wal.configuration.directory, keyRing: wal.configuration.encryption)
        opened = file
        return file
    }
}
