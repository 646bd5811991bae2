import Foundation
import RaftLogStorage
import Testing
@testable import WAL
@testable import WALCrash

/// The Raft example adapter (Sources/RaftLogStorage) against an in-memory model
/// (``RaftLogState``), with random operation sequences of ``RaftOpGenerator``: appends,
/// conflicting overwrites, compaction, snapshot installs, hard-state updates, reopens.
///
/// Environment: `WAL_RAFT_SEED` (the first sequence's seed; a failure prints the seed of its
/// sequence, which replays as the first), `WAL_RAFT_MODEL_SCALE` (multiplies the sequences;
/// scripts/crash-test sets it), `WAL_CRASH_STATE_SCALE` for the crash-state suite.
@Suite("Raft log storage: model-based")
struct RaftLogModelTests {
    static let scale = ProcessInfo.processInfo.environment["WAL_RAFT_MODEL_SCALE"].flatMap(Int.init) ?? 1
    static let firstSeed = ProcessInfo.processInfo.environment["WAL_RAFT_SEED"].flatMap(UInt64.init) ?? 0x5241_4654

    static func configuration(_ directory: String, seed: UInt64) -> WALConfiguration {
        var configuration = testConfiguration(directory, engine: availableEngines[Int(seed % UInt64(availableEngines.count))],
                                              segmentTargetSize: 8 << 10)
        configuration.bufferSize = 8192
        return configuration
    }

    static func entry(_ index: UInt64, _ term: UInt64) -> RaftEntry {
        RaftEntry(index: index, term: term, data: Array("entry \(index) of term \(term)".utf8))
    }

    @Test("The adapter by example: append, overwrite, reads, compaction, snapshot, hard state, reopen")
    func example() throws {
        try withTemporaryDirectory { directory in
            let configuration = Self.configuration(directory, seed: 0)
            var storage = try RaftLogStorage(configuration: configuration)
            #expect(storage.firstIndex == 1 && storage.lastIndex == 0 && storage.hardState == HardState())
            try storage.append((1...10).map { Self.entry($0, 1) })
            try storage.append((6...7).map { Self.entry($0, 2) })  // a new leader: 8...10 go
            #expect(storage.lastIndex == 7)
            #expect(try storage.entries(5, 8) == [Self.entry(5, 1), Self.entry(6, 2), Self.entry(7, 2)])
            #expect(try storage.term(7) == 2)
            #expect(throws: RaftStorageError.unavailable(index: 8, lastIndex: 7)) { try storage.term(8) }
            #expect(throws: RaftStorageError.gap(index: 9, lastIndex: 7)) { try storage.append([Self.entry(9, 2)]) }
            #expect(throws: RaftStorageError.notContiguous(index: 10)) { try storage.append([Self.entry(8, 2), Self.entry(10, 2)]) }
            try storage.compact(before: 4)
            #expect(storage.firstIndex == 4 && storage.snapshot == SnapshotMetadata(index: 3, term: 1))
            #expect(try storage.term(3) == 1)
            #expect(throws: RaftStorageError.compacted(index: 2, firstIndex: 4)) { try storage.entries(2, 5) }
            try storage.setHardState(HardState(term: 2, vote: 3, commit: 6))
            storage = try RaftOp.reopen.perform(on: storage, configuration: configuration)
            #expect(storage.hardState == HardState(term: 2, vote: 3, commit: 6))
            #expect(try storage.entries(4, 8).map(\.term) == [1, 1, 2, 2])
            try storage.installSnapshot(index: 20, term: 3)
            #expect(throws: RaftStorageError.snapshotOutOfDate(index: 15, current: 20)) { try storage.installSnapshot(index: 15, term: 3) }
            #expect(storage.firstIndex == 21 && storage.lastIndex == 20)
            #expect(try storage.term(20) == 3)
            try storage.append([Self.entry(21, 3)])
            storage = try RaftOp.reopen.perform(on: storage, configuration: configuration)
            #expect(try storage.entries(21, 22) == [Self.entry(21, 3)])
            #expect(storage.snapshot == SnapshotMetadata(index: 20, term: 3))
            try storage.close()
        }
    }

    @Test("Random operation sequences equal the model after every operation and every reopen")
    func randomSequences() throws {
        let sequences = 12 * Self.scale, length = 100
        var totals = (operations: 0, reopens: 0, entriesCompared: 0, mismatches: 0)
        for sequence in 0..<sequences {
            let seed = Self.firstSeed &+ UInt64(sequence)
            try withTemporaryDirectory { directory in
                let configuration = Self.configuration(directory, seed: seed)
                var storage = try RaftLogStorage(configuration: configuration)
                var model = RaftLogState()
                var generator = RaftOpGenerator(seed: seed)
                for step in 0...length {
                    let op = step == length ? RaftOp.reopen : generator.next(model)
                    storage = try op.perform(on: storage, configuration: configuration)
                    model = model.applying(op)
                    totals.operations += 1
                    let found = try RaftLogState.read(storage)
                    totals.entriesCompared += found.entries.count
                    var terms = true
                    if op == .reopen {
                        totals.reopens += 1
                        terms = try (model.snapshot.index...model.lastIndex).allSatisfy { try storage.term($0) == model.term($0) }
                    }
                    if found != model || !terms {
                        totals.mismatches += 1
                        let message = "seed \(seed) (replay: WAL_RAFT_SEED=\(seed)), step \(step) after \(op):\n"
                            + "found \(found)\nmodel \(model)"
                        Issue.record(Comment(rawValue: message))
                        break
                    }
                }
                try storage.close()
            }
        }
        print("raft model: \(sequences) sequences from seed \(Self.firstSeed), \(totals.operations) operations, \(totals.reopens) reopens, "
              + "\(totals.entriesCompared) entries compared, mismatches = \(totals.mismatches)")
        #expect(totals.reopens >= sequences)
    }
}

/// Random Raft operation sequences under ``CrashStateModel``: at every moment of the trace,
/// sampled crash states (sector- or block-granular) are opened with the adapter, and the log,
/// snapshot and hard state must equal the model after every operation that had returned,
/// plus — for the one in progress — one of the states a crash during it may leave. Then one
/// more append and a reopen must give that state plus the entry (recovery after recovery).
@Suite("Raft log storage: crash states")
struct RaftLogCrashStateTests {
    @Test("Sampled crash states of random Raft operations reopen as the model at an acknowledged point")
    func crashStates() throws {
        let sequences = 4 * CrashStateTests.scale, length = 30, samples = 6 * CrashStateTests.scale
        var totals = (operations: 0, moments: 0, states: 0, distinct: 0, mismatches: 0)
        var problems: [String] = []
        for sequence in 0..<sequences {
            let seed = RaftLogModelTests.firstSeed &+ 1000 &+ UInt64(sequence)
            let unit: CrashStateModel.Unit = sequence % 2 == 0 ? .sector : .block
            try withTemporaryDirectory { root in
                let directory = root + "/wal"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
                let configuration = RaftLogModelTests.configuration(directory, seed: seed)
                let model = CrashStateModel()
                var ops: [RaftOp] = []
                var after: [RaftLogState] = [RaftLogState()]  // after[j]: the model once ops[0..<j] returned
                var boundaries: [Int] = []  // events when the open, then each operation, returned
                try FaultHooks.shared.with(directory, model.handlers) {
                    var storage = try RaftLogStorage(configuration: configuration)
                    boundaries.append(model.events)
                    var generator = RaftOpGenerator(seed: seed)
                    for _ in 0..<length {
                        let op = generator.next(after.last!)
                        storage = try op.perform(on: storage, configuration: configuration)
                        ops.append(op)
                        after.append(after.last!.applying(op))
                        boundaries.append(model.events)
                    }
                    try storage.close()
                }
                totals.operations += ops.count
                problems += model.now.violations
                var rng = SplitMix64(seed: seed)
                var seen = Set<Int>()
                for (index, disk) in model.moments().enumerated() {
                    totals.moments += 1
                    let events = index + 1
                    // The operation in progress when this event happened (nil: the first open or the final close).
                    let running = boundaries.indices.dropFirst().first { events <= boundaries[$0] }.map { $0 - 1 }
                    let allowed = running.map { after[$0].crashStates(during: ops[$0]) } ?? [events <= boundaries[0] ? after[0] : after.last!]
                    let choices = disk.choices(unit: unit)
                    let states = choices.count <= samples ? choices.all() : (0..<samples).map { _ in choices.random(using: &rng) }
                    for state in states {
                        totals.states += 1
                        try withImageDirectory { image in
                            let files = try disk.materialise(state, of: choices, unit: unit, source: directory, target: image)
                            var hasher = Hasher()
                            for name in files.keys.sorted() { hasher.combine(name); hasher.combine(files[name]!) }
                            hasher.combine(running)
                            guard seen.insert(hasher.finalize()).inserted else { return }
                            totals.distinct += 1
                            var reopen = configuration
                            reopen.directory = image
                            reopen.engine = .posix
                            if let problem = Self.check(reopen, allowed: allowed) {
                                totals.mismatches += 1
                                problems.append("seed \(seed), \(unit), moment \(index), during \(running.map { ops[$0].description } ?? "open/close"): \(problem)")
                            }
                        }
                    }
                }
            }
        }
        print("raft crash states: \(sequences) sequences, \(totals.operations) operations, \(totals.moments) moments, "
              + "\(totals.states) crash states, \(totals.distinct) distinct opened, mismatches = \(totals.mismatches)")
        #expect(problems.isEmpty, "\(problems.prefix(3))")
        #expect(totals.distinct > 100)
    }

    /// What is wrong with one crash image, or nil.
    static func check(_ configuration: WALConfiguration, allowed: [RaftLogState]) -> String? {
        do {
            var storage = try RaftLogStorage(configuration: configuration)
            let found = try RaftLogState.read(storage)
            guard allowed.contains(found) else {
                try? storage.close()
                return "reopened as \(found); allowed:\n" + allowed.map { "  \($0)" }.joined(separator: "\n")
            }
            let op = RaftOp.append(first: found.lastIndex + 1, count: 1, term: found.highestTerm, salt: 7)
            storage = try op.perform(on: storage, configuration: configuration)
            storage = try RaftOp.reopen.perform(on: storage, configuration: configuration)
            defer { try? storage.close() }
            let again = try RaftLogState.read(storage)
            return again == found.applying(op) ? nil : "after one append and a reopen: \(again)"
        } catch {
            return "refused: \(error)"
        }
    }
}
