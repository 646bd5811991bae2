// A Wing & Gong linearizability checker (with Lowe's / Porcupine's memoisation of the
// configurations already explored) and a sequential specification of the WAL's public API.
//
// Pure: no I/O and no dependency on the WAL module, so that this file also compiles on its own
// (`swiftc HistoryChecker.swift harness.swift`) for fast iteration on the checker.

// MARK: - Histories

/// One completed operation of a concurrent history: what it did and returned, and when it was
/// invoked and when it returned (any monotonic clock, e.g. nanoseconds of uptime).
struct HistoryEntry<Operation>: CustomStringConvertible {
    /// The thread or task that issued it (for printing only).
    var process: Int
    var invocation: UInt64
    var response: UInt64
    var operation: Operation
    /// The index (in the history) of an entry that must be linearized before this one, beyond
    /// what real time demands: a commit is recorded as its append and its acknowledgement,
    /// with the same times; the acknowledgement depends on the append.
    var after: Int?

    init(process: Int, invocation: UInt64, response: UInt64, operation: Operation, after: Int? = nil) {
        precondition(invocation <= response, "an operation cannot return before it was invoked")
        self.process = process
        self.invocation = invocation
        self.response = response
        self.operation = operation
        self.after = after
    }

    var description: String { "p\(process) [\(invocation)…\(response)] \(operation)" + (after.map { " (after #\($0))" } ?? "") }
}

extension HistoryEntry: Sendable where Operation: Sendable {}

/// A sequential specification: the states an object can be in and which operations (with
/// their results) are legal in each.
protocol SequentialSpecification {
    associatedtype State: Hashable
    associatedtype Operation: CustomStringConvertible
    var initialState: State { get }
    /// The state after `operation` (with the result it recorded), or nil when that result is
    /// not one the object could have given in `state`.
    func step(_ state: State, _ operation: Operation) -> State?
    /// Why `step` refused `operation` in `state` (for counterexamples).
    func rejection(_ state: State, _ operation: Operation) -> String
    func describe(_ state: State) -> String
}

// MARK: - The checker

/// A fixed-size set of small integers (the entries linearized so far).
struct LinearizedSet: Hashable {
    private(set) var words: [UInt64]
    init(capacity: Int) { words = Array(repeating: 0, count: (capacity + 63) / 64) }
    func contains(_ index: Int) -> Bool { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }
    mutating func insert(_ index: Int) { words[index >> 6] |= 1 << UInt64(index & 63) }
    mutating func remove(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }
}

enum LinearizabilityVerdict<Specification: SequentialSpecification> {
    /// A legal sequential order exists; `order` is one (indexes into the history).
    case linearizable(order: [Int], configurations: Int)
    /// No legal order exists.
    case notLinearizable(Counterexample<Specification>)
    /// The search explored more configurations than allowed: no verdict.
    case gaveUp(configurations: Int)

    var isLinearizable: Bool { if case .linearizable = self { return true } else { return false } }
    var isViolation: Bool { if case .notLinearizable = self { return true } else { return false } }
}

/// The longest linearizable prefix the search found, and what could not be placed after it.
struct Counterexample<Specification: SequentialSpecification>: CustomStringConvertible {
    var history: [HistoryEntry<Specification.Operation>]
    /// Indexes into `history`, in linearization order.
    var prefix: [Int]
    /// The state after the prefix.
    var state: Specification.State
    /// The entries that could have come next (real time and dependencies allow them), each
    /// with why the specification refuses it there.
    var refused: [(entry: Int, reason: String)]
    /// The pending entry that returned first: it must be placed before anything invoked after
    /// its response, so it is "the op that could not be placed".
    var blocking: Int
    var specification: Specification
    var configurations: Int

    var description: String {
        let origin = history.map(\.invocation).min() ?? 0
        func line(_ index: Int) -> String {
            let entry = history[index]
            return "#\(index) p\(entry.process) [\(microseconds(entry.invocation - origin))…\(microseconds(entry.response - origin)) µs] \(entry.operation)"
        }
        var text = "NOT LINEARIZABLE (\(history.count) operations, \(configurations) configurations explored)\n"
        text += "Longest linearizable prefix (\(prefix.count) of \(history.count)):\n"
        for index in prefix { text += "  " + line(index) + "\n" }
        text += "State after it: \(specification.describe(state))\n"
        text += "Could not place: " + line(blocking) + "\n"
        text += "  because: " + specification.rejection(state, history[blocking].operation) + "\n"
        let others = refused.filter { $0.entry != blocking }
        if !others.isEmpty {
            text += "Other candidates refused there:\n"
            for (entry, reason) in others { text += "  " + line(entry) + " — " + reason + "\n" }
        }
        let pending = (0..<history.count).filter { !prefix.contains($0) }
        text += "Pending operations (\(pending.count)):\n"
        for index in pending.sorted(by: { history[$0].invocation < history[$1].invocation }) { text += "  " + line(index) + "\n" }
        return text
    }

    /// Nanoseconds as microseconds with one decimal.
    private func microseconds(_ nanoseconds: UInt64) -> String {
        "\(nanoseconds / 1000).\(nanoseconds % 1000 / 100)"
    }
}

/// Wing & Gong's search for a legal sequential order consistent with real time: repeatedly
/// linearize one of the pending operations that no other pending operation precedes (one
/// invoked no later than the earliest pending response), backtracking when the specification
/// refuses, and never exploring the same (set of linearized operations, state) twice.
struct LinearizabilityChecker<Specification: SequentialSpecification> {
    var specification: Specification
    /// Configurations explored before giving up (a verdict of ``LinearizabilityVerdict/gaveUp(configurations:)``).
    var maxConfigurations = 2_000_000

    private struct Configuration: Hashable {
        var linearized: LinearizedSet
        var state: Specification.State
    }

    func check(_ history: [HistoryEntry<Specification.Operation>]) -> LinearizabilityVerdict<Specification> {
        for (index, entry) in history.enumerated() {
            if let after = entry.after { precondition(after != index && history.indices.contains(after), "bad dependency") }
        }
        var search = Search(history: history, specification: specification, limit: maxConfigurations)
        let found = search.run()
        switch found {
        case .some(true):
            return .linearizable(order: search.path, configurations: search.visited.count)
        case .none:
            return .gaveUp(configurations: search.visited.count)
        case .some(false):
            var linearized = LinearizedSet(capacity: history.count)
            for index in search.bestPath { linearized.insert(index) }
            let candidates = Search.candidates(history, linearized)
            let refused = candidates.map { ($0, specification.rejection(search.bestState, history[$0].operation)) }
            let pending = (0..<history.count).filter { !linearized.contains($0) }
            let blocking = pending.min { history[$0].response < history[$1].response } ?? 0
            return .notLinearizable(Counterexample(history: history, prefix: search.bestPath, state: search.bestState,
                                                   refused: refused, blocking: blocking, specification: specification,
                                                   configurations: search.visited.count))
        }
    }

    private struct Search {
        let history: [HistoryEntry<Specification.Operation>]
        let specification: Specification
        let limit: Int
        var visited: Set<Configuration> = []
        var path: [Int] = []
        var bestPath: [Int] = []
        var bestState: Specification.State

        init(history: [HistoryEntry<Specification.Operation>], specification: Specification, limit: Int) {
            self.history = history
            self.specification = specification
            self.limit = limit
            bestState = specification.initialState
        }

        /// The pending entries that may be linearized next.
        static func candidates(_ history: [HistoryEntry<Specification.Operation>], _ linearized: LinearizedSet) -> [Int] {
            var earliestResponse = UInt64.max
            for index in history.indices where !linearized.contains(index) {
                earliestResponse = min(earliestResponse, history[index].response)
            }
            return history.indices.filter { index in
                !linearized.contains(index) && history[index].invocation <= earliestResponse
                    && (history[index].after.map { linearized.contains($0) } ?? true)
            }.sorted { history[$0].invocation < history[$1].invocation }
        }

        /// true: linearizable; false: not; nil: gave up.
        mutating func run() -> Bool? {
            var linearized = LinearizedSet(capacity: history.count)
            return explore(&linearized, specification.initialState)
        }

        private mutating func explore(_ linearized: inout LinearizedSet, _ state: Specification.State) -> Bool? {
            if path.count == history.count { return true }
            guard visited.insert(Configuration(linearized: linearized, state: state)).inserted else { return false }
            if visited.count > limit { return nil }
            if path.count > bestPath.count {
                bestPath = path
                bestState = state
            }
            for index in Self.candidates(history, linearized) {
                guard let next = specification.step(state, history[index].operation) else { continue }
                linearized.insert(index)
                path.append(index)
                let found = explore(&linearized, next)
                if found != false { return found }
                path.removeLast()
                linearized.remove(index)
            }
            return false
        }
    }
}

// MARK: - The WAL's sequential specification

typealias ModelLSN = UInt64

/// A failure the specification knows about (the WAL's errors, mapped by the driver).
enum LogFailure: Hashable, Sendable, CustomStringConvertible {
    /// `WALError.truncated(after:)` or `.logReset(to:)`: the record (or the reader's position) was cut away.
    case cut
    /// `WALError.lsnNotAppended`.
    case notAppended
    /// `WALError.invalidArgument`.
    case invalidArgument
    /// `WALError.truncatedWhileReading`: `truncate(before:)` deleted a segment under the reader.
    case goneWhileReading

    var description: String {
        switch self {
        case .cut: return "cut-error"
        case .notAppended: return "lsnNotAppended"
        case .invalidArgument: return "invalidArgument"
        case .goneWhileReading: return "truncatedWhileReading"
        }
    }
}

enum OpOutcome<Value: Hashable & Sendable>: Hashable, Sendable {
    case ok(Value)
    case failed(LogFailure)
}

struct Acknowledged: Hashable, Sendable, CustomStringConvertible { var description: String { "ok" } }

/// An operation of the WAL's public API with the result it returned. Payloads are unique tags.
enum LogOperation: Hashable, Sendable, CustomStringConvertible {
    /// `append` → its LSN.
    case append(tag: String, lsn: ModelLSN)
    /// The append half of a commit: its LSN, or nil when the commit threw (the LSN is unknown).
    case commitAppend(tag: String, lsn: ModelLSN?)
    /// The durability half of a commit: its LSN, or the cut error it threw.
    case commitAck(tag: String, outcome: OpOutcome<ModelLSN>)
    /// `waitUntilDurable` / `durable`.
    case waitDurable(lsn: ModelLSN, outcome: OpOutcome<Acknowledged>)
    case sync
    case rollSegment
    case truncateAfter(lsn: ModelLSN, outcome: OpOutcome<Acknowledged>)
    case reset(lsn: ModelLSN, outcome: OpOutcome<Acknowledged>)
    case truncateBefore(checkpoint: ModelLSN)
    /// `record(at:)` → the tag read, or nil.
    case read(lsn: ModelLSN, outcome: OpOutcome<String?>)
    /// `records(from:through:)` → (LSN, tag) pairs.
    case readRange(from: ModelLSN, through: ModelLSN, outcome: OpOutcome<[LSNTag]>)
    case setMetadata([UInt8])
    case getMetadata([UInt8]?)
    /// A live tailer delivered (lsn, tag).
    case observe(lsn: ModelLSN, tag: String)

    var description: String {
        func show<T>(_ outcome: OpOutcome<T>, _ value: (T) -> String) -> String {
            switch outcome {
            case .ok(let v): return value(v)
            case .failed(let failure): return "throws \(failure)"
            }
        }
        switch self {
        case .append(let tag, let lsn): return "append(\(tag)) -> \(lsn)"
        case .commitAppend(let tag, let lsn): return "commit(\(tag)).append -> \(lsn.map(String.init) ?? "?")"
        case .commitAck(let tag, let outcome): return "commit(\(tag)).durable -> " + show(outcome) { "\($0)" }
        case .waitDurable(let lsn, let outcome): return "waitUntilDurable(\(lsn)) -> " + show(outcome) { _ in "ok" }
        case .sync: return "sync() -> ok"
        case .rollSegment: return "rollSegment() -> ok"
        case .truncateAfter(let lsn, let outcome): return "truncate(after: \(lsn)) -> " + show(outcome) { _ in "ok" }
        case .reset(let lsn, let outcome): return "reset(to: \(lsn)) -> " + show(outcome) { _ in "ok" }
        case .truncateBefore(let checkpoint): return "truncate(before: \(checkpoint)) -> ok"
        case .read(let lsn, let outcome): return "record(at: \(lsn)) -> " + show(outcome) { $0 ?? "nil" }
        case .readRange(let lo, let hi, let outcome):
            return "records(from: \(lo), through: \(hi)) -> " + show(outcome) { "[" + $0.map(\.description).joined(separator: ", ") + "]" }
        case .setMetadata(let bytes): return "setMetadata(\(LogModel.text(bytes))) -> ok"
        case .getMetadata(let bytes): return "metadata() -> \(bytes.map(LogModel.text) ?? "nil")"
        case .observe(let lsn, let tag): return "tailer got \(lsn):\(tag)"
        }
    }
}

struct LSNTag: Hashable, Sendable, CustomStringConvertible {
    var lsn: ModelLSN
    var tag: String
    var description: String { "\(lsn):\(tag)" }
}

/// The sequential specification of a SegmentedWAL (see the test file for how each call maps).
///
/// State: the records first..<next, the highest checkpoint given to `truncate(before:)`
/// (`floor`) and the metadata blob. `truncate(before:)` deletes whole sealed segments, so the
/// model cannot know the first LSN the log really holds: below `floor` a read may return the
/// record or nothing (a range read may lack a prefix below it), and a wait for durability
/// may succeed or throw a cut error.
struct LogModel: SequentialSpecification {
    struct State: Hashable {
        var first: ModelLSN = 1
        var next: ModelLSN = 1
        /// tags[i] is the record at LSN first + i.
        var tags: [String] = []
        var floor: ModelLSN = 0
        var metadata: [UInt8]?

        func tag(at lsn: ModelLSN) -> String? {
            lsn >= first && lsn < next ? tags[Int(lsn - first)] : nil
        }
        func holds(_ lsn: ModelLSN) -> Bool { lsn >= first && lsn < next }
        func lsn(of tag: String) -> ModelLSN? { tags.firstIndex(of: tag).map { first + ModelLSN($0) } }
    }

    /// The highest LSN a cut accepts: `truncate(after:)` and `reset(to:)` throw invalidArgument
    /// for an LSN that leaves none for the next record, `lsn >= LSNDomain.last` (2⁶³ − 2).
    static let maxCutLSN: ModelLSN = ModelLSN(Int64.max) - 2

    var initialState: State

    init(initialState: State = State()) { self.initialState = initialState }

    static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).debugDescription
    }

    func describe(_ state: State) -> String {
        var text = "first=\(state.first) next=\(state.next) floor=\(state.floor) metadata=\(state.metadata.map(Self.text) ?? "nil") records=["
        let shown = state.tags.enumerated().map { "\(state.first + ModelLSN($0.offset)):\($0.element)" }
        // A long log: its first records and its last ones.
        text += shown.count <= 16 ? shown.joined(separator: ", ")
            : (shown.prefix(3) + ["… \(shown.count - 11) more …"] + shown.suffix(8)).joined(separator: ", ")
        return text + "]"
    }

    func step(_ state: State, _ operation: LogOperation) -> State? {
        var state = state
        switch operation {
        case .append(let tag, let lsn):
            guard lsn == state.next else { return nil }
            state.tags.append(tag)
            state.next += 1
        case .commitAppend(let tag, let lsn):
            guard lsn == nil || lsn == state.next else { return nil }
            state.tags.append(tag)
            state.next += 1
        case .commitAck(let tag, .ok(let lsn)):
            guard state.tag(at: lsn) == tag || lsn < state.floor else { return nil }
        case .commitAck(let tag, .failed(let failure)):
            guard failure == .cut else { return nil }
            if let lsn = state.lsn(of: tag), lsn >= state.floor { return nil }
        case .waitDurable(let lsn, .ok):
            guard state.holds(lsn) || lsn < state.floor else { return nil }
        case .waitDurable(let lsn, .failed(let failure)):
            switch failure {
            case .cut: guard !state.holds(lsn) || lsn < state.floor else { return nil }
            case .notAppended: guard lsn >= state.next else { return nil }
            default: return nil
            }
        case .sync, .rollSegment:
            break
        case .truncateAfter(let lsn, .ok):
            guard lsn <= Self.maxCutLSN else { return nil }
            if lsn >= state.next - 1 { break }  // nothing above it: nothing happens
            if lsn + 1 < state.first {  // below the first record: empties the log, as reset does
                state.tags = []
                state.first = lsn + 1
            } else {
                state.tags.removeLast(Int(state.next - 1 - lsn))
            }
            state.next = lsn + 1
        case .truncateAfter(let lsn, .failed(let failure)), .reset(let lsn, .failed(let failure)):
            guard failure == .invalidArgument, lsn > Self.maxCutLSN else { return nil }
        case .reset(let lsn, .ok):
            guard lsn <= Self.maxCutLSN else { return nil }
            state.tags = []
            state.first = lsn + 1
            state.next = lsn + 1
        case .truncateBefore(let checkpoint):
            state.floor = max(state.floor, checkpoint)
        case .read(let lsn, .ok(let tag)):
            let expected = state.tag(at: lsn)
            guard tag == expected || (tag == nil && lsn < state.floor) else { return nil }
        case .read(let lsn, .failed(let failure)):
            // Only truncate(before:) may delete a segment under a reader: one below the floor.
            guard failure == .goneWhileReading, lsn < state.floor else { return nil }
        case .readRange(let lo, let hi, .ok(let got)):
            let expected = Self.range(state, lo, hi)
            guard got.count <= expected.count, Array(expected.suffix(got.count)) == got else { return nil }
            let missing = expected.prefix(expected.count - got.count)
            guard missing.allSatisfy({ $0.lsn < state.floor }) else { return nil }
        case .readRange(let lo, _, .failed(let failure)):
            guard failure == .goneWhileReading, lo < state.floor else { return nil }
        case .setMetadata(let bytes):
            state.metadata = bytes
        case .getMetadata(let bytes):
            guard bytes == state.metadata else { return nil }
        case .observe(let lsn, let tag):
            guard state.tag(at: lsn) == tag else { return nil }
        }
        return state
    }

    static func range(_ state: State, _ lo: ModelLSN, _ hi: ModelLSN) -> [LSNTag] {
        let from = max(lo, state.first)
        guard state.next > 0 else { return [] }
        let through = min(hi, state.next - 1)
        guard from <= through else { return [] }
        return (from...through).map { LSNTag(lsn: $0, tag: state.tags[Int($0 - state.first)]) }
    }

    func rejection(_ state: State, _ operation: LogOperation) -> String {
        if step(state, operation) != nil { return "legal here (refused only later in every order tried)" }
        switch operation {
        case .append(_, let lsn), .commitAppend(_, .some(let lsn)):
            return "the next LSN is \(state.next), not \(lsn)"
        case .commitAck(let tag, .ok(let lsn)):
            return "LSN \(lsn) holds \(state.tag(at: lsn) ?? "nothing"), not \(tag)"
        case .commitAck(let tag, .failed):
            return "\(tag) is still in the log (LSN \(state.lsn(of: tag).map(String.init) ?? "?")), above floor \(state.floor)"
        case .waitDurable(let lsn, .ok):
            return "LSN \(lsn) is not in the log [\(state.first), \(state.next)) (floor \(state.floor)): its record is gone or was never appended"
        case .waitDurable(let lsn, .failed):
            return "LSN \(lsn) is in the log [\(state.first), \(state.next))"
        case .read(let lsn, _):
            return "LSN \(lsn) holds \(state.tag(at: lsn) ?? "nothing") (floor \(state.floor))"
        case .readRange(let lo, let hi, _):
            return "the log holds [\(Self.range(state, lo, hi).map(\.description).joined(separator: ", "))] there (floor \(state.floor))"
        case .getMetadata:
            return "the metadata is \(state.metadata.map(Self.text) ?? "nil")"
        case .observe(let lsn, _):
            return "LSN \(lsn) holds \(state.tag(at: lsn) ?? "nothing")"
        default:
            return "refused by the specification"
        }
    }
}

// MARK: - Histories from the specification itself (for testing the checker)

/// Random histories that are linearizable by construction: operations are run one at a time
/// against the specification (each result is the one it gives), at increasing points in time,
/// and each gets an interval around its point that its process's neighbours do not overlap.
/// The checker must accept every one of them; changing one result usually makes it refuse.
struct GeneratedLogHistory<Random: RandomNumberGenerator> {
    var random: Random
    var processes = 4
    var operationsPerProcess = 8
    /// How far an interval may reach before and after its linearization point.
    var spread: UInt64 = 40

    init(random: Random) { self.random = random }

    mutating func make() -> [HistoryEntry<LogOperation>] {
        let model = LogModel()
        var state = model.initialState
        var remaining = Array(repeating: operationsPerProcess, count: processes)
        var sequence = 0
        // (process, point, operation, depends on the previous one)
        var steps: [(process: Int, point: UInt64, operation: LogOperation, paired: Bool)] = []
        var clock: UInt64 = 1000
        while let process = remaining.indices.filter({ remaining[$0] > 0 }).randomElement(using: &random) {
            remaining[process] -= 1
            sequence += 1
            clock += UInt64.random(in: 1...20, using: &random)
            let tag = "w\(process)-\(sequence)"
            let known = state.next > 1 ? state.next - 1 : 1
            let near = { (random: inout Random) -> ModelLSN in
                let low = known > 4 ? known - 4 : 1
                return ModelLSN.random(in: low...(known + 2), using: &random)
            }
            let operation: LogOperation
            switch Int.random(in: 0..<14, using: &random) {
            case 0, 1: operation = .append(tag: tag, lsn: state.next)
            case 2, 3:
                steps.append((process, clock, .commitAppend(tag: tag, lsn: state.next), false))
                state = model.step(state, .commitAppend(tag: tag, lsn: state.next))!
                operation = .commitAck(tag: tag, outcome: .ok(state.next - 1))
                steps.append((process, clock, operation, true))
                continue
            case 4:
                let lsn = near(&random)
                operation = .waitDurable(lsn: lsn, outcome: state.holds(lsn) ? .ok(Acknowledged())
                                                             : lsn >= state.next ? .failed(.notAppended) : .failed(.cut))
            case 5: operation = .truncateAfter(lsn: near(&random), outcome: .ok(Acknowledged()))
            case 6: operation = .reset(lsn: near(&random) + 3, outcome: .ok(Acknowledged()))
            case 7: operation = .sync
            case 8, 9: let lsn = near(&random); operation = .read(lsn: lsn, outcome: .ok(state.tag(at: lsn)))
            case 10:
                let lo = near(&random), hi = lo + ModelLSN.random(in: 0...3, using: &random)
                operation = .readRange(from: lo, through: hi, outcome: .ok(LogModel.range(state, lo, hi)))
            case 11: operation = .setMetadata(Array("m\(sequence)".utf8))
            case 12: operation = .getMetadata(state.metadata)
            default:
                if let lsn = (state.first..<state.next).randomElement(using: &random) {
                    operation = .observe(lsn: lsn, tag: state.tag(at: lsn)!)
                } else {
                    operation = .sync
                }
            }
            state = model.step(state, operation)!
            steps.append((process, clock, operation, false))
        }
        // Intervals: around each point, never overlapping the same process's neighbours.
        var history: [HistoryEntry<LogOperation>] = []
        var lastResponse = Array(repeating: UInt64(0), count: processes)
        for (index, step) in steps.enumerated() {
            if step.paired {
                let append = history[index - 1]
                history.append(HistoryEntry(process: step.process, invocation: append.invocation, response: append.response,
                                            operation: step.operation, after: index - 1))
                continue
            }
            let nextPoint = steps[(index + 1)...].first { $0.process == step.process }?.point ?? .max
            let before = UInt64.random(in: 0...spread, using: &random)
            let invocation = max(lastResponse[step.process] + 1, step.point > before ? step.point - before : 0)
            let response = min(step.point + UInt64.random(in: 0...spread, using: &random), nextPoint - 1)
            lastResponse[step.process] = response
            // A commit's append and acknowledgement share one interval, which must hold both points.
            history.append(HistoryEntry(process: step.process, invocation: min(invocation, step.point),
                                        response: max(response, step.point), operation: step.operation))
        }
        return history
    }
}
