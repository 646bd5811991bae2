import Testing
import WALFormat
@testable import WALCommit

/// ``FlightBook``, event by event, in the manner of swift-nio's `PendingWritesState` tests:
/// every order of completions of a few flights, errors with flights in flight, and the
/// assertions that guard its three rules.
@Suite("The flight book")
struct FlightBookTests {
    typealias Book = FlightBook<String>

    /// A flight to start: its blocks, last record, and form.
    struct Spec: Sendable {
        var name: String
        var range: Range<Int64>
        var lastLSN: LSN
        var syncs = true
        var selfDurable = true
    }

    /// An event of one row.
    enum Step: Sendable, CustomStringConvertible {
        case start(Spec)
        case written(String)
        case synced(String)

        var description: String {
            switch self {
            case .start(let spec): "start \(spec.name)"
            case .written(let name): "written \(name)"
            case .synced(let name): "synced \(name)"
            }
        }
    }

    /// Plays `steps`, popping after each durability event; returns the durable LSN after each step.
    static func play(_ steps: [Step], depth: Int, throughWrites: Int = 0) -> (book: Book, durable: [LSN], popped: [String]) {
        var book = Book(depth: depth, durable: 0)
        var ids: [String: Int] = [:]
        var durable: [LSN] = []
        var popped: [String] = []
        var writes = throughWrites
        for step in steps {
            switch step {
            case .start(let spec):
                ids[spec.name] = book.start(spec.name, range: spec.range, lastLSN: spec.lastLSN, syncs: spec.syncs,
                                            selfDurable: spec.selfDurable, throughWrite: writes)
            case .written(let name):
                writes += 1
                _ = book.written(ids[name]!, throughWrite: writes)
            case .synced(let name):
                book.synced(ids[name]!)
                while let flight = book.popDurable() { popped.append(flight.job) }
            }
            durable.append(book.durable)
        }
        return (book, durable, popped)
    }

    static let a = Spec(name: "A", range: 0..<8192, lastLSN: 10)
    static let b = Spec(name: "B", range: 8192..<12288, lastLSN: 20)
    static let c = Spec(name: "C", range: 12288..<16384, lastLSN: 30)

    // MARK: Rows

    struct Row: Sendable, CustomTestStringConvertible {
        let note: String
        let depth: Int
        let steps: [Step]
        /// The durable LSN after each step.
        let durable: [LSN]
        var testDescription: String { note }
    }

    static let rows: [Row] = [
        Row(note: "one flight at a time: a write durable by itself", depth: 1,
            steps: [.start(a), .written("A"), .synced("A")], durable: [0, 0, 10]),
        Row(note: "a plain write leaves the book when written; the linked fdatasync after it covers both", depth: 1,
            steps: [.start(Spec(name: "P", range: 0..<8192, lastLSN: 7, syncs: false, selfDurable: false)), .written("P"),
                    .start(Spec(name: "L", range: 8192..<12288, lastLSN: 12, selfDurable: false)), .written("L"), .synced("L")],
            durable: [0, 0, 0, 0, 12]),
        Row(note: "an fdatasync alone (no bytes) after plain writes", depth: 1,
            steps: [.start(Spec(name: "P", range: 0..<8192, lastLSN: 7, syncs: false, selfDurable: false)), .written("P"),
                    .start(Spec(name: "S", range: 8192..<8192, lastLSN: 7, selfDurable: false)), .synced("S")],
            durable: [0, 0, 0, 7]),
        Row(note: "two flights durable by themselves, the later one first: nothing until the first", depth: 4,
            steps: [.start(a), .start(b), .written("B"), .synced("B"), .written("A"), .synced("A")],
            durable: [0, 0, 0, 0, 0, 20]),
        Row(note: "three flights, the middle one last", depth: 4,
            steps: [.start(a), .start(b), .start(c), .written("A"), .synced("A"), .written("C"), .synced("C"),
                    .written("B"), .synced("B")],
            durable: [0, 0, 0, 0, 10, 10, 10, 10, 30]),
        Row(note: "a linked fdatasync covers every earlier flight, even one whose own sync is still due", depth: 4,
            steps: [.start(Spec(name: "L", range: 0..<4096, lastLSN: 5, selfDurable: false)), .written("L"),
                    .start(Spec(name: "M", range: 4096..<8192, lastLSN: 9, selfDurable: false)), .written("M"),
                    .synced("M"), .synced("L")],
            durable: [0, 0, 0, 0, 9, 9]),
    ]

    @Test("each row's durable LSN after each event", arguments: rows)
    func row(_ row: Row) {
        let (book, durable, _) = Self.play(row.steps, depth: row.depth)
        #expect(durable == row.durable, "\(row.note): \(row.steps)")
        #expect(book.isIdle, "every flight left the book")
    }

    /// Every order in which the write and durability events of three flights durable by
    /// themselves can arrive (a flight's write before its durability): the durable LSN is always
    /// the prefix of flights all durable, and every flight leaves the book in order.
    @Test("every order of completions of three flights keeps the durable LSN a prefix")
    func everyOrder() {
        let specs = [Self.a, Self.b, Self.c]
        var orders: [[Step]] = []
        func extend(_ order: [Step], _ next: [Int]) {  // next[i]: 0 = write due, 1 = sync due, 2 = done
            if next.allSatisfy({ $0 == 2 }) { orders.append(order); return }
            for i in next.indices where next[i] < 2 {
                var more = next
                more[i] += 1
                extend(order + [next[i] == 0 ? .written(specs[i].name) : .synced(specs[i].name)], more)
            }
        }
        extend(specs.map { .start($0) }, [0, 0, 0])
        #expect(orders.count == 90)
        for order in orders {
            let (book, durable, popped) = Self.play(order, depth: 3)
            var synced = Set<String>()
            for (step, lsn) in zip(order, durable) {
                if case .synced(let name) = step { synced.insert(name) }
                let prefix = specs.prefix { synced.contains($0.name) }
                #expect(lsn == (prefix.last?.lastLSN ?? 0), "after \(step) in \(order)")
            }
            #expect(popped == ["A", "B", "C"], "\(order)")
            #expect(book.isIdle)
        }
    }

    // MARK: Openings

    @Test("what may start: depth, writes in flight, a write that must go alone")
    func openings() {
        var book = Book(depth: 2, durable: 0)
        #expect(book.opening == .anyJob)
        let a = book.start("A", range: 0..<8192, lastLSN: 10, syncs: true, selfDurable: true, throughWrite: 0)
        #expect(book.opening == .wholeBlocks(notBefore: 8192), "beside a dsync write: only past its end")
        let b = book.start("B", range: 8192..<12288, lastLSN: 20, syncs: true, selfDurable: true, throughWrite: 0)
        #expect(book.opening == .none, "full")
        _ = book.written(a, throughWrite: 1)
        book.synced(a)
        _ = book.popDurable()
        #expect(book.opening == .wholeBlocks(notBefore: 12288))
        _ = book.written(b, throughWrite: 2)
        book.synced(b)
        _ = book.popDurable()
        let l = book.start("L", range: 12288..<16384, lastLSN: 25, syncs: true, selfDurable: false, throughWrite: 2)
        #expect(book.opening == .none, "a linked write goes alone")
        _ = book.written(l, throughWrite: 3)
        #expect(book.opening == .anyJob, "its fdatasync may overlap the next write")
        #expect(!book.isIdle)
        book.synced(l)
        #expect(book.popDurable()?.job == "L")
        #expect(book.isIdle && book.durable == 25)
    }

    @Test("a flight covered by a later fdatasync still counts against the depth until its own fdatasync is reaped")
    func coveredFlightKeepsItsPlace() {
        // The engine holds a flight until its last completion: a linked fdatasync covered by a
        // later one leaves the book's flights early, but it is still in the engine. Found by
        // PipelinedCommitStressTests: the book let a fifth flight start beside four in the
        // engine ("more flights than the engine keeps").
        var book = Book(depth: 2, durable: 0)
        let a = book.start("A", range: 0..<8192, lastLSN: 10, syncs: true, selfDurable: false, throughWrite: 0)
        _ = book.written(a, throughWrite: 1)
        #expect(book.opening == .anyJob, "A's fdatasync may overlap the next write")
        let b = book.start("B", range: 8192..<12288, lastLSN: 20, syncs: true, selfDurable: false, throughWrite: 1)
        _ = book.written(b, throughWrite: 2)
        book.synced(b)  // B's fdatasync completed first: it covers A
        #expect(book.popDurable()?.job == "A")
        #expect(book.popDurable()?.job == "B")
        #expect(book.durable == 20)
        #expect(!book.isIdle, "A's fdatasync is still due")
        #expect(book.inEngine == 1)
        #expect(book.opening == .anyJob, "one place of two is A's")
        let c = book.start("C", range: 12288..<16384, lastLSN: 30, syncs: true, selfDurable: true, throughWrite: 2)
        #expect(book.opening == .none, "A (its fdatasync) and C fill the depth")
        book.synced(a)
        #expect(book.popDurable() == nil)
        #expect(book.opening == .wholeBlocks(notBefore: 16384))
        _ = book.written(c, throughWrite: 3)
        book.synced(c)
        #expect(book.popDurable()?.job == "C")
        #expect(book.isIdle && book.inEngine == 0)
    }

    @Test("covered: what the flights started make durable, so that no flight claims the same records twice")
    func covered() {
        var book = Book(depth: 4, durable: 3)
        #expect(book.coveredOrDurable == 3)
        let a = book.start("A", range: 0..<4096, lastLSN: 8, syncs: true, selfDurable: true, throughWrite: 0)
        #expect(book.coveredOrDurable == 8)
        let b = book.start("B", range: 4096..<8192, lastLSN: 12, syncs: true, selfDurable: true, throughWrite: 0)
        #expect(book.flight(b)?.firstRecord == 9)
        _ = book.written(a, throughWrite: 1)
        _ = book.written(b, throughWrite: 2)
        book.synced(b)
        #expect(book.popDurable() == nil, "B waits for A")
        book.synced(a)
        #expect(book.popDurable()?.job == "A")
        #expect(book.popDurable()?.job == "B")
        #expect(book.durable == 12)
    }

    // MARK: Failure

    @Test("an error with flights in flight: every flight is abandoned, and those still writing keep their buffers out")
    func abandonWithFlightsInFlight() {
        var book = Book(depth: 4, durable: 0)
        let a = book.start("A", range: 0..<4096, lastLSN: 5, syncs: true, selfDurable: true, throughWrite: 0)
        _ = book.start("B", range: 4096..<8192, lastLSN: 9, syncs: true, selfDurable: true, throughWrite: 0)
        _ = book.written(a, throughWrite: 1)
        let abandoned = book.abandon()
        #expect(abandoned.map(\.job) == ["A", "B"])
        #expect(abandoned.filter(\.writing).map(\.job) == ["B"], "B's buffer may still be read by the kernel until the engine drains")
        #expect(book.isIdle && book.durable == 0, "nothing was published")
    }

    @Test("the loop resumes the book at the durable LSN a rollover or cut left")
    func resume() {
        var book = Book(depth: 1, durable: 0)
        book.resume(durable: 40)
        #expect(book.durable == 40 && book.coveredOrDurable == 40)
        let id = book.start("A", range: 0..<4096, lastLSN: 41, syncs: true, selfDurable: true, throughWrite: 0)
        #expect(book.flight(id)?.firstRecord == 41)
    }

    // MARK: The rules' assertions

    @Test("two writes of one block in flight trap")
    func overlapTraps() async {
        await #expect(processExitsWith: .failure) {
            var book = FlightBook<Int>(depth: 4, durable: 0)
            _ = book.start(1, range: 0..<8192, lastLSN: 10, syncs: true, selfDurable: true, throughWrite: 0)
            _ = book.start(2, range: 4096..<12288, lastLSN: 20, syncs: true, selfDurable: true, throughWrite: 0)
        }
    }

    @Test("a write that is not durable by itself beside another write traps")
    func notAloneTraps() async {
        await #expect(processExitsWith: .failure) {
            var book = FlightBook<Int>(depth: 4, durable: 0)
            _ = book.start(1, range: 0..<8192, lastLSN: 10, syncs: true, selfDurable: true, throughWrite: 0)
            _ = book.start(2, range: 8192..<12288, lastLSN: 20, syncs: true, selfDurable: false, throughWrite: 0)
        }
    }

    @Test("durability reported before the write completed traps")
    func syncedBeforeWrittenTraps() async {
        await #expect(processExitsWith: .failure) {
            var book = FlightBook<Int>(depth: 1, durable: 0)
            let id = book.start(1, range: 0..<8192, lastLSN: 10, syncs: true, selfDurable: true, throughWrite: 0)
            book.synced(id)
        }
    }
}
