import RaftLogStorage
import WAL

/// One operation on a ``RaftLogStorage``, as the model-based tests and the `raft` crash
/// campaign generate it. Each has a one-line text form (the child reports it before it starts).
enum RaftOp: Equatable, Sendable, CustomStringConvertible {
    /// Entries `first ..< first + count` of `term`, data derived from `salt`; replaces any
    /// entries at or above `first` (an overwrite when `first` ≤ the last index).
    case append(first: UInt64, count: Int, term: UInt64, salt: UInt64)
    case compact(before: UInt64)
    case install(index: UInt64, term: UInt64)
    case hardState(HardState)
    case reopen

    var description: String {
        switch self {
        case .append(let first, let count, let term, let salt): "append \(first) \(count) \(term) \(salt)"
        case .compact(let before): "compact \(before)"
        case .install(let index, let term): "install \(index) \(term)"
        case .hardState(let h): "hardstate \(h.term) \(h.vote.map(String.init) ?? "-") \(h.commit)"
        case .reopen: "reopen"
        }
    }

    init?(_ line: String) {
        let f = line.split(separator: " ").map(String.init)
        let n = f.dropFirst().map { UInt64($0) }
        switch (f.first, f.count) {
        case ("append", 5): guard let a = n[0], let b = n[1], let c = n[2], let d = n[3] else { return nil }
            self = .append(first: a, count: Int(b), term: c, salt: d)
        case ("compact", 2): guard let a = n[0] else { return nil }; self = .compact(before: a)
        case ("install", 3): guard let a = n[0], let b = n[1] else { return nil }; self = .install(index: a, term: b)
        case ("hardstate", 4): guard let a = n[0], let c = n[2] else { return nil }
            self = .hardState(HardState(term: a, vote: n[1], commit: c))
        case ("reopen", 1): self = .reopen
        default: return nil
        }
    }

    /// The entries an append writes: sizes mostly small, some of several KiB.
    static func entries(first: UInt64, count: Int, term: UInt64, salt: UInt64) -> [RaftEntry] {
        (0..<UInt64(count)).map { offset in
            var rng = SplitMix64(seed: salt ^ (first + offset) &* 0x9E37_79B9_7F4A_7C15)
            let size = rng.next() % 10 == 0 ? Int(rng.next() % 6000) : Int(rng.next() % 120)
            return RaftEntry(index: first + offset, term: term, data: (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    /// Runs the operation; returns the storage to go on with (a new one after `reopen`).
    func perform(on storage: RaftLogStorage, configuration: WALConfiguration) throws(RaftStorageError) -> RaftLogStorage {
        switch self {
        case .append(let first, let count, let term, let salt): try storage.append(Self.entries(first: first, count: count, term: term, salt: salt))
        case .compact(let before): try storage.compact(before: before)
        case .install(let index, let term): try storage.installSnapshot(index: index, term: term)
        case .hardState(let hardState): try storage.setHardState(hardState)
        case .reopen:
            try storage.close()
            return try RaftLogStorage(configuration: configuration)
        }
        return storage
    }
}

/// What a ``RaftLogStorage`` should present: the model the tests and the campaign compare with.
struct RaftLogState: Equatable, Sendable, CustomStringConvertible {
    var snapshot = SnapshotMetadata()
    /// The entries snapshot.index + 1 ... lastIndex.
    var entries: [RaftEntry] = []
    var hardState = HardState()

    var lastIndex: UInt64 { snapshot.index + UInt64(entries.count) }
    var lastTerm: UInt64 { entries.last?.term ?? snapshot.term }
    var highestTerm: UInt64 { max(lastTerm, hardState.term) }

    func term(_ index: UInt64) -> UInt64 { index == snapshot.index ? snapshot.term : entries[Int(index - snapshot.index - 1)].term }

    var description: String {
        "snapshot \(snapshot.index)/\(snapshot.term), entries \(snapshot.index + 1)...\(lastIndex) terms "
            + "\(entries.map { String($0.term) }.joined(separator: ",")), hard state \(RaftOp.hardState(hardState))"
    }

    /// Reads everything through the adapter's interface.
    static func read(_ storage: RaftLogStorage) throws(RaftStorageError) -> RaftLogState {
        let first = storage.firstIndex, last = storage.lastIndex
        return RaftLogState(snapshot: storage.snapshot, entries: try storage.entries(first, last + 1), hardState: storage.hardState)
    }

    /// The state after `op` returned.
    func applying(_ op: RaftOp) -> RaftLogState {
        var next = self
        switch op {
        case .append(let first, let count, let term, let salt):
            let new = RaftOp.entries(first: first, count: count, term: term, salt: salt).filter { $0.index > snapshot.index }
            guard let start = new.first?.index else { break }
            next.entries = Array(entries.prefix(Int(start - snapshot.index - 1))) + new
        case .compact(let before):
            guard before > snapshot.index + 1 else { break }
            next.snapshot = SnapshotMetadata(index: before - 1, term: term(before - 1))
            next.entries = entries.filter { $0.index >= before }
        case .install(let index, let term):
            next.snapshot = SnapshotMetadata(index: index, term: term)
            next.entries = []
        case .hardState(let hardState):
            next.hardState = hardState
        case .reopen:
            break
        }
        return next
    }

    /// The states a crash during `op` may leave: not done, done, and for an append the cut
    /// log plus any prefix of the new entries.
    func crashStates(during op: RaftOp) -> [RaftLogState] {
        var states = [self]
        if case .append = op {
            let done = applying(op)
            let kept = zip(entries, done.entries).prefix { $0 == $1 }.count
            for count in kept...done.entries.count {
                var state = self
                state.entries = Array(done.entries.prefix(count))
                if !states.contains(state) { states.append(state) }
            }
        } else if applying(op) != self {
            states.append(applying(op))
        }
        return states
    }
}

/// Random Raft operations that a correct Raft node could issue: appends at the end in the
/// current term, overwrites of a suffix by a later term (a new leader), compaction, snapshot
/// installs (sometimes behind, sometimes past the log's end), hard-state updates, reopens.
struct RaftOpGenerator {
    var rng: SplitMix64
    var reopens = true

    init(seed: UInt64, reopens: Bool = true) { rng = SplitMix64(seed: seed); self.reopens = reopens }

    mutating func below(_ bound: UInt64) -> UInt64 { bound == 0 ? 0 : rng.next() % bound }

    mutating func next(_ state: RaftLogState) -> RaftOp {
        let roll = below(100)
        let s = state.snapshot.index, last = state.lastIndex
        switch roll {
        case 0..<40:
            let count = below(8) == 0 ? 10 + Int(below(40)) : 1 + Int(below(6))
            return .append(first: last + 1, count: count, term: state.highestTerm, salt: rng.next())
        case 40..<55 where last > s:
            // A new leader's entries conflict from `first` on (sometimes from at or below the snapshot).
            let first = s + 1 + below(last - s) - min(below(3), s)
            return .append(first: max(first, 1), count: 1 + Int(below(6)), term: state.highestTerm + 1, salt: rng.next())
        case 55..<65 where last > s:
            return .compact(before: s + 2 + below(last - s))
        case 65..<70:
            return .install(index: s + 1 + below(last - s + 20), term: state.highestTerm + below(2))
        case 70..<90:
            let term = state.highestTerm + below(2)
            let vote: UInt64? = below(3) == 0 ? nil : 1 + below(5)
            return .hardState(HardState(term: term, vote: vote, commit: s + below(last - s + 1)))
        case 90..<100 where reopens:
            return .reopen
        default:
            return .append(first: last + 1, count: 1, term: state.highestTerm, salt: rng.next())
        }
    }
}
