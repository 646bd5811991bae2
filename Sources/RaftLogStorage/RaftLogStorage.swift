import Synchronization
import WAL

// An example a Raft implementer can copy: the log storage of a Raft node (the interface of
// etcd/raft's `Storage` plus its writes) on one `SegmentedWAL` directory.
//
//   Raft                         SegmentedWAL
//   entry index i                record LSN i; payload = 8-byte little-endian term + data
//   append(entries)              truncate(after: first − 1) when it overwrites, append…, sync
//   entries(lo, hi), term(i)     point reads: records(from:through:), record(at:)
//   compact(before: i)           metadata (snapshot = i − 1 and its term), truncate(before: i)
//   installSnapshot(i, t)        metadata (intent), reset(to: i), metadata (done)
//   hard state, snapshot (i, t)  the metadata blob: setMetadata, durable and crash-safe
//
// Every write is durable when it returns. A crash leaves each call done or not done: an
// append may leave a prefix of its entries (never an entry of a later call), an overwrite the
// cut log, but never a mix of old and new entries at one index (truncate(after:) is
// crash-atomic and ordered before the appends).

/// A Raft log entry: its index (the WAL's LSN), the term of the leader that created it, and
/// the command bytes.
public struct RaftEntry: Sendable, Hashable {
    public var index: UInt64
    public var term: UInt64
    public var data: [UInt8]
    public init(index: UInt64, term: UInt64, data: [UInt8]) { self.index = index; self.term = term; self.data = data }
}

/// Raft's persistent state besides the log: current term, vote in it, highest known commit.
public struct HardState: Sendable, Hashable {
    public var term: UInt64 = 0
    public var vote: UInt64? = nil
    public var commit: UInt64 = 0
    public init(term: UInt64 = 0, vote: UInt64? = nil, commit: UInt64 = 0) { self.term = term; self.vote = vote; self.commit = commit }
}

/// The last index (and its term) the log no longer holds: everything up to it is in a snapshot.
public struct SnapshotMetadata: Sendable, Hashable {
    public var index: UInt64 = 0
    public var term: UInt64 = 0
    public init(index: UInt64 = 0, term: UInt64 = 0) { self.index = index; self.term = term }
}

public enum RaftStorageError: Error, Sendable, Equatable {
    /// The index is at or below the snapshot: compacted away.
    case compacted(index: UInt64, firstIndex: UInt64)
    /// The index is above the last entry.
    case unavailable(index: UInt64, lastIndex: UInt64)
    /// An append starting at `index` would leave a hole after `lastIndex`.
    case gap(index: UInt64, lastIndex: UInt64)
    /// The entries of one append do not have consecutive indexes.
    case notContiguous(index: UInt64)
    /// installSnapshot with an index at or below the current snapshot's.
    case snapshotOutOfDate(index: UInt64, current: UInt64)
    /// The metadata blob or a record is not what this adapter writes.
    case corrupt(String)
    /// The WAL failed (I/O error, closed, ...).
    case wal(WALError)
}

/// Raft log storage on a ``SegmentedWAL``. `Sendable`; calls are serialised by one lock.
public final class RaftLogStorage: Sendable {
    /// What the metadata blob holds. `installing`: a snapshot install's intent is durable but
    /// its reset(to:) may not be — open finishes it.
    struct Persisted: Equatable {
        var hardState = HardState()
        var snapshot = SnapshotMetadata()
        var installing = false
    }

    private let wal: SegmentedWAL
    private let state: Mutex<Persisted>

    /// Opens (or creates) the log in `configuration.directory` and finishes an interrupted
    /// snapshot install.
    public init(configuration: WALConfiguration) throws(RaftStorageError) {
        let wal = try walCall { () throws(WALError) in try SegmentedWAL(configuration: configuration) }
        var persisted = try Self.decode(walCall { () throws(WALError) in try wal.metadata() })
        if persisted.installing {
            try walCall { () throws(WALError) in try wal.reset(to: persisted.snapshot.index) }
            persisted.installing = false
            try walCall { () throws(WALError) in try wal.setMetadata(Self.encode(persisted)) }
        }
        guard wal.nextLSN > persisted.snapshot.index else {
            throw .corrupt("the log ends at \(wal.nextLSN - 1), below the snapshot at \(persisted.snapshot.index)")
        }
        self.wal = wal
        self.state = Mutex(persisted)
    }

    /// Closes the WAL; later calls throw `.wal(.closed)`.
    public func close() throws(RaftStorageError) { try walCall { () throws(WALError) in try wal.close() } }

    // MARK: Reads

    public var hardState: HardState { state.withLock { $0.hardState } }
    public var snapshot: SnapshotMetadata { state.withLock { $0.snapshot } }
    /// The first index the log holds: snapshot.index + 1. (compact(before:) drops whole WAL
    /// segments, so records below it may still be on disk; they are never returned.)
    public var firstIndex: UInt64 { state.withLock { $0.snapshot.index + 1 } }
    /// The last index: snapshot.index when the log holds no entry.
    public var lastIndex: UInt64 { wal.nextLSN - 1 }

    /// The entries with indexes in `lo..<hi`, by point reads (no scan from the segment's start).
    public func entries(_ lo: UInt64, _ hi: UInt64) throws(RaftStorageError) -> [RaftEntry] {
        try state.withLock { (persisted) throws(RaftStorageError) -> [RaftEntry] in
            guard lo > persisted.snapshot.index else { throw .compacted(index: lo, firstIndex: persisted.snapshot.index + 1) }
            guard hi <= wal.nextLSN else { throw .unavailable(index: hi - 1, lastIndex: wal.nextLSN - 1) }
            guard lo < hi else { return [] }
            let records = try walCall { () throws(WALError) in try wal.records(from: lo, through: hi - 1) }
            let entries = try records.map { (record) throws(RaftStorageError) in try Self.entry(record) }
            guard entries.count == Int(hi - lo), entries.first?.index == lo else { throw .corrupt("entries \(lo)..<\(hi) incomplete") }
            return entries
        }
    }

    /// The term of entry `index`; for snapshot.index, the snapshot's term.
    public func term(_ index: UInt64) throws(RaftStorageError) -> UInt64 {
        try state.withLock { (persisted) throws(RaftStorageError) -> UInt64 in try term(index, persisted) }
    }

    private func term(_ index: UInt64, _ persisted: Persisted) throws(RaftStorageError) -> UInt64 {
        if index == persisted.snapshot.index { return persisted.snapshot.term }
        guard index > persisted.snapshot.index else { throw .compacted(index: index, firstIndex: persisted.snapshot.index + 1) }
        guard index < wal.nextLSN else { throw .unavailable(index: index, lastIndex: wal.nextLSN - 1) }
        guard let record = try walCall({ () throws(WALError) in try wal.record(at: index) }) else {
            throw .corrupt("entry \(index) is missing")
        }
        return try Self.entry(record).term
    }

    // MARK: Writes (each durable on return)

    /// Appends `entries` (consecutive indexes), replacing every entry at or above the first
    /// one's index (Raft's conflicting suffix). Entries at or below the snapshot are skipped.
    public func append(_ entries: [RaftEntry]) throws(RaftStorageError) {
        try state.withLock { (persisted) throws(RaftStorageError) in
            for (previous, next) in zip(entries, entries.dropFirst()) where next.index != previous.index + 1 {
                throw .notContiguous(index: next.index)
            }
            let new = entries.drop { $0.index <= persisted.snapshot.index }
            guard let first = new.first?.index else { return }
            guard first <= wal.nextLSN else { throw .gap(index: first, lastIndex: wal.nextLSN - 1) }
            try walCall { () throws(WALError) in
                if first < wal.nextLSN { try wal.truncate(after: first - 1) }  // crash-atomic
                for entry in new { try wal.append(.put, payload: Self.payload(entry)) }
                try wal.sync()
            }
        }
    }

    /// Discards the entries below `index` (they are in a snapshot the caller has taken):
    /// records the new snapshot point first, then deletes the WAL segments wholly below it.
    public func compact(before index: UInt64) throws(RaftStorageError) {
        try state.withLock { (persisted) throws(RaftStorageError) in
            guard index > 0, index - 1 > persisted.snapshot.index else { return }  // already compacted
            let term = try term(index - 1, persisted)  // .unavailable past the end
            var next = persisted
            next.snapshot = SnapshotMetadata(index: index - 1, term: term)
            try walCall { () throws(WALError) in
                try wal.setMetadata(Self.encode(next))
                _ = try wal.truncate(before: index)
            }
            persisted = next
        }
    }

    /// Installs a snapshot received from the leader: the log becomes empty and continues at
    /// `index` + 1. Crash-atomic: the intent goes into the metadata first, open finishes it.
    public func installSnapshot(index: UInt64, term: UInt64) throws(RaftStorageError) {
        try state.withLock { (persisted) throws(RaftStorageError) in
            guard index > persisted.snapshot.index else { throw .snapshotOutOfDate(index: index, current: persisted.snapshot.index) }
            var next = persisted
            next.snapshot = SnapshotMetadata(index: index, term: term)
            next.installing = true
            try walCall { () throws(WALError) in
                try wal.setMetadata(Self.encode(next))
                try wal.reset(to: index)
                next.installing = false
                try wal.setMetadata(Self.encode(next))
            }
            persisted = next
        }
    }

    /// Persists Raft's hard state (term, vote, commit) in the WAL's metadata.
    public func setHardState(_ hardState: HardState) throws(RaftStorageError) {
        try state.withLock { (persisted) throws(RaftStorageError) in
            var next = persisted
            next.hardState = hardState
            try walCall { () throws(WALError) in try wal.setMetadata(Self.encode(next)) }
            persisted = next
        }
    }

    // MARK: Encoding

    static func payload(_ entry: RaftEntry) -> [UInt8] {
        withUnsafeBytes(of: entry.term.littleEndian, Array.init) + entry.data
    }

    static func entry(_ record: WALRecord) throws(RaftStorageError) -> RaftEntry {
        guard record.payload.count >= 8 else { throw .corrupt("record \(record.lsn) has no term") }
        return RaftEntry(index: record.lsn, term: read(record.payload, at: 0), data: Array(record.payload[8...]))
    }

    /// "RAFT", version 1, flags (1: vote set, 2: installing), then term, vote, commit,
    /// snapshot index, snapshot term as little-endian UInt64s: 46 bytes.
    static func encode(_ persisted: Persisted) -> [UInt8] {
        let flags = UInt8(persisted.hardState.vote == nil ? 0 : 1) | (persisted.installing ? 2 : 0)
        let words = [persisted.hardState.term, persisted.hardState.vote ?? 0, persisted.hardState.commit,
                     persisted.snapshot.index, persisted.snapshot.term]
        return Array("RAFT".utf8) + [1, flags] + words.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
    }

    static func decode(_ bytes: [UInt8]?) throws(RaftStorageError) -> Persisted {
        guard let bytes else { return Persisted() }  // a new log
        guard bytes.count == 46, bytes.starts(with: "RAFT".utf8), bytes[4] == 1 else { throw .corrupt("unknown metadata") }
        let word = { (index: Int) in read(bytes, at: 6 + 8 * index) }
        return Persisted(hardState: HardState(term: word(0), vote: bytes[5] & 1 != 0 ? word(1) : nil, commit: word(2)),
                         snapshot: SnapshotMetadata(index: word(3), term: word(4)), installing: bytes[5] & 2 != 0)
    }

    private static func read(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }
}

/// Runs a WAL call, wrapping its error.
private func walCall<T>(_ body: () throws(WALError) -> T) throws(RaftStorageError) -> T {
    do { return try body() } catch { throw .wal(error) }
}
