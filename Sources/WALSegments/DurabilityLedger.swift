import WALFormat

/// What of a segment is durable: how many writes completed, how many of them an fdatasync (or a
/// write durable by itself) has covered, and the highest LSN durable. Shared by one flush at a
/// time and several in flight: the WAL reports each write's completion (``written(selfDurable:)``)
/// and each durable flight, in flight order (``synced(throughWrite:lsn:)``).
struct DurabilityLedger {
    /// Writes completed.
    private(set) var writesCompleted = 0
    /// How many of the first writes completed are durable.
    private var writesSynced = 0
    /// The highest LSN durable.
    private(set) var durableLSN: LSN

    init(durableLSN: LSN) { self.durableLSN = durableLSN }

    /// Writes completed since the last fdatasync that nothing made durable.
    var hasUnsyncedWrites: Bool { writesSynced < writesCompleted }

    /// A write completed; returns how many writes have completed (what an fdatasync issued now
    /// covers). A write durable by itself leaves nothing unsynced when nothing was before it.
    mutating func written(selfDurable: Bool) -> Int {
        let allSynced = writesSynced == writesCompleted
        writesCompleted += 1
        if selfDurable && allSynced { writesSynced = writesCompleted }
        return writesCompleted
    }

    /// The first `count` writes are durable, and every record up to `lsn`.
    mutating func synced(throughWrite count: Int, lsn: LSN) {
        writesSynced = max(writesSynced, count)
        durableLSN = max(durableLSN, lsn)
    }

    /// Everything written is durable, up to `lsn` (a seal's fsync).
    mutating func syncedAll(lsn: LSN) {
        writesSynced = writesCompleted
        durableLSN = max(durableLSN, lsn)
    }
}
