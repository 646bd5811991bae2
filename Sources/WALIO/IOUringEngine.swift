import Glibc
import WALFormat

/// The io_uring engine: requests become SQEs in the form ``WriteForm/ioUring(_:isEmpty:method:)``
/// gives them (an `RWF_DSYNC` write, a write linked to an fdatasync, ...), and each request's
/// completions go through one ``FlightCompletion`` state machine, whether the request is one of
/// several in flight (``start(_:id:)``) or written alone (``write(_:)``, which is a flight the
/// engine waits for). The ring itself is ``IOUringRing``.
///
/// user_data carries a flight's id (its low 30 bits), its resubmission ``FlightCompletion/generation``
/// (32 bits) and which SQE it is (1 for the fdatasync): `id << 33 | generation << 1 | sync`.
/// The flights in flight (at most ``maxFlights``) never share those 30 bits, so completions are
/// matched by them, whatever the id has grown to.
///
/// What the crash-state model is told, one vocabulary for every request: a plain write's bytes
/// when its completion arrives (``SyscallEvent/write(path:offset:bytes:)``); a dsync write when
/// it is issued and when its bytes complete (``SyscallEvent/durableWriteIssued(path:offset:bytes:)``,
/// ``SyscallEvent/durableWriteCompleted(path:offset:count:)``); an fdatasync when it is issued
/// (after its write completed, so it covers exactly the writes completed so far) and when it
/// completes (``SyscallEvent/syncStarted(path:id:)``, ``SyscallEvent/syncFinished(path:id:)``).
final class IOUringEngine: FlightEngine {
    var kind: IOEngineKind { .ioUring }

    /// The doorbell's poll; never a flight's tag.
    private static let doorbellTag: UInt64 = .max
    /// The id of a request written alone (``write(_:)``); only used with no flight in flight.
    private static let aloneID = -1

    private let ring: IOUringRing
    private let syncMethod: IOUringSyncMethod
    /// How many flights at most: 1 when the kernel cannot poll the doorbell, or when every
    /// write is a dsync write (``IOUringSyncMethod/dsyncWrites``: a write would wait for the
    /// previous one's durability anyway).
    let maxFlights: Int

    /// A request in the ring.
    private struct RingFlight {
        let id: Int
        let base: UnsafeRawPointer
        let offset: Int64
        /// Unowned: the segment writer keeps the file open until its requests have completed or
        /// been abandoned; a plain reference would be retained at every copy of the flight.
        unowned(unsafe) let file: SegmentFile
        let form: WriteForm
        /// The request asked for durability: ``FlightEvent/synced(_:)`` is due.
        let durable: Bool
        var completion: FlightCompletion
        /// Numbers its fdatasync for the crash-state model.
        var marker = 0
    }

    /// The flights started and not finished, oldest first.
    @exclusivity(unchecked) private var flights: [RingFlight] = []
    /// Events reaped; those from `eventHead` on are not yet handed out.
    @exclusivity(unchecked) private var events: [FlightEvent] = []
    @exclusivity(unchecked) private var eventHead = 0
    /// CQEs due for the flights' SQEs (the doorbell's not counted).
    @exclusivity(unchecked) private var completionsDue = 0
    @exclusivity(unchecked) private var doorbellArmed = false
    @exclusivity(unchecked) private var syncMarker = 0

    /// - Throws: ``WALError/engineUnavailable(engine:reason:)`` saying why io_uring cannot run.
    init(syncMethod: IOUringSyncMethod = .adaptive, flushesInFlight: Int = 1) throws(WALError) {
        self.syncMethod = syncMethod
        let several = flushesInFlight > 1 && syncMethod != .dsyncWrites
        // Two SQEs per flight and the doorbell's, and the CQ twice that.
        ring = try IOUringRing(entries: several ? max(8, UInt32(4 * flushesInFlight)) : 8, doorbell: several)
        maxFlights = several && ring.hasDoorbell ? flushesInFlight : 1
        flights.reserveCapacity(maxFlights + 1)
        events.reserveCapacity(2 * maxFlights + 2)
    }

    func form(of durability: WriteDurability, isEmpty: Bool) -> WriteForm {
        .ioUring(durability, isEmpty: isEmpty, method: syncMethod)
    }

    func write(_ request: WriteRequest) throws(WALError) {
        precondition(flights.isEmpty && !hasEvents, "a request is written alone only when no flight is in flight")
        let durable = request.durability != .none
        if request.bytes.isEmpty && !durable { return }
        do throws(WALError) {
            try start(request, id: Self.aloneID)
            while true {
                switch try nextFlightEvent(armDoorbell: false) {
                case .written where !durable, .synced: return
                case .written, .doorbell: continue
                }
            }
        } catch {
            _ = abandonFlights()  // the next request finds the ring clean
            throw error
        }
    }

    func shutdown() { ring.shutdown() }

    // MARK: Flights

    func start(_ request: WriteRequest, id: Int) throws(WALError) {
        AlignedBuffer.assertAligned(request.bytes, offset: request.offset, direct: request.file.isDirect)
        let form = form(of: request.durability, isEmpty: request.bytes.isEmpty)
        let length = form.write == .nothing ? 0 : request.bytes.count
        var flight = RingFlight(id: id, base: request.bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 4096)!,
                                offset: request.offset, file: request.file, form: form,
                                durable: request.durability != .none,
                                completion: FlightCompletion(length: length, fdatasync: form.fdatasync))
        precondition(flights.count < maxFlights || id == Self.aloneID, "more flights than the engine keeps")
        if form.write == .dsync {
            TestHooks.observe(.durableWriteIssued(path: flight.file.path, offset: flight.offset,
                                                  bytes: Array(UnsafeRawBufferPointer(start: flight.base, count: length))))
        }
        if flight.completion.writeDone {  // nothing to write
            guard form.fdatasync else {
                // Nothing to do at all (every write was durable by itself already).
                if flight.durable { events.append(.synced(id)) }
                return
            }
            flight.marker = startSync(flight.file.path)  // covers what was written before now
        }
        flights.append(flight)
        try queue(flights.count - 1)
    }

    func nextFlightEvent(armDoorbell: Bool) throws(WALError) -> FlightEvent {
        while !hasEvents {
            if armDoorbell && !doorbellArmed && ring.hasDoorbell {
                try ring.queueDoorbellPoll(tag: Self.doorbellTag)
                doorbellArmed = true
            }
            precondition(completionsDue > 0 || doorbellArmed, "waiting with nothing in flight")
            let (tag, result) = try ring.completion(self.flights.first?.file.path ?? "io_uring")
            try handle(tag: tag, result: result)
        }
        return takeEvent()
    }

    func readyEvent() -> FlightEvent? { hasEvents ? takeEvent() : nil }

    private var hasEvents: Bool { eventHead < events.count }

    /// The oldest event not handed out (the array is emptied, keeping its capacity, once all are).
    private func takeEvent() -> FlightEvent {
        let event = events[eventHead]
        eventHead += 1
        if eventHead == events.count {
            events.removeAll(keepingCapacity: true)
            eventHead = 0
        }
        return event
    }

    func ringDoorbell() {
        if ring.hasDoorbell { ring.ringDoorbell() }
    }

    func abandonFlights() -> Bool {
        var drained = true
        let path = flights.first?.file.path ?? "io_uring"
        while completionsDue > 0 {
            // The ring retries EINTR/EAGAIN/EBUSY itself; any other error (the ring is broken,
            // completions were dropped) means the due ones may never be seen, and the kernel
            // may still be reading the buffers: say so rather than hand them back.
            guard let (tag, _) = try? ring.completion(path) else { drained = false; break }  // path: evaluated on error only
            if tag == Self.doorbellTag { doorbellRang(); continue }
            completionsDue -= 1
        }
        flights.removeAll(keepingCapacity: true)
        events.removeAll(keepingCapacity: true)
        eventHead = 0
        return drained
    }

    /// The bits of a flight id that user_data carries.
    static func tagID(_ id: Int) -> UInt64 { UInt64(id & 0x3FFF_FFFF) }

    // MARK: Completions

    /// Queues the rest of flight `index`: its write (linked to its fdatasync when it has one)
    /// and the fdatasync; they go to the kernel with the next wait.
    private func queue(_ index: Int) throws(WALError) {
        let tag = Self.tagID(flights[index].id) << 33 | UInt64(flights[index].completion.generation) << 1
        let file = flights[index].file
        let form = flights[index].form
        let remaining = flights[index].completion.remaining
        if remaining > 0 {
            let written = flights[index].completion.written
            try ring.queueWrite(file.descriptor, flights[index].base + written, count: remaining,
                                offset: flights[index].offset + Int64(written), tag: tag,
                                dsync: form.write == .dsync, linked: form.fdatasync, path: file.path)
            completionsDue += 1
        }
        if form.fdatasync {
            try ring.queueFdatasync(file.descriptor, tag: tag | 1, path: file.path)
            completionsDue += 1
        }
    }

    /// One CQE: the doorbell's, or a flight's, which its ``FlightCompletion`` turns into a step.
    private func handle(tag: UInt64, result rawResult: Int32) throws(WALError) {
        if tag == Self.doorbellTag {
            doorbellRang()
            events.append(.doorbell)
            return
        }
        completionsDue -= 1
        let isSync = tag & 1 == 1
        guard let index = flights.firstIndex(where: { Self.tagID($0.id) == tag >> 33 }),
              (tag >> 1) & 0xFFFF_FFFF == UInt64(flights[index].completion.generation) else {
            return  // the cancelled fdatasync of a write that was resubmitted
        }
        let result = TestHooks.completion(isSync ? "fdatasync" : "write", flights[index].file.path, rawResult)
        let before = flights[index].completion.written
        // Mutated in place: a copy of the flight would retain its file at every completion.
        let step = isSync ? flights[index].completion.syncCompleted(result) : flights[index].completion.writeCompleted(result)
        switch step {
        case .pending:
            return
        case .failed(let operation, let errno):
            throw WALError.io(operation: operation, errno: errno, path: flights[index].file.path)
        case .resubmit(let accepted):
            report(index, from: before, count: accepted)
            try queue(index)
        case .writeDone(let accepted, let syncDone):
            report(index, from: before, count: accepted)
            let id = flights[index].id
            events.append(.written(id))
            guard flights[index].form.fdatasync else {
                let durable = flights[index].durable
                flights.remove(at: index)
                if durable { events.append(.synced(id)) }  // durable as it completed
                return
            }
            // The linked fdatasync starts after this write completed, before the next write is
            // submitted (the caller waits for this event): it covers exactly the writes so far.
            flights[index].marker = startSync(flights[index].file.path)
            if syncDone { finishSync(at: index) }
        case .syncDone:
            finishSync(at: index)
        }
    }

    private func finishSync(at index: Int) {
        let flight = flights.remove(at: index)
        TestHooks.observe(.syncFinished(path: flight.file.path, id: flight.marker))
        events.append(.synced(flight.id))
    }

    private func startSync(_ path: String) -> Int {
        syncMarker += 1
        TestHooks.observe(.syncStarted(path: path, id: syncMarker))
        return syncMarker
    }

    private func doorbellRang() {
        doorbellArmed = false
        ring.resetDoorbell()
    }

    /// Tells ``TestHooks/observer`` (the crash-state model) what `count` bytes of flight
    /// `index`'s write completion put in the file, from byte `from` of the request.
    private func report(_ index: Int, from: Int, count: Int) {
        guard TestHooks.isObserving, count > 0 else { return }
        let flight = flights[index]
        let offset = flight.offset + Int64(from)
        if flight.form.write == .dsync {
            TestHooks.observe(.durableWriteCompleted(path: flight.file.path, offset: offset, count: count))
        } else {
            let bytes = UnsafeRawBufferPointer(start: flight.base + from, count: count)
            TestHooks.observe(.write(path: flight.file.path, offset: offset, bytes: Array(bytes)))
        }
    }
}
