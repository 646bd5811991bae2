import WALFormat

/// An engine that keeps requests in flight: ``start(_:id:)`` submits one and returns;
/// ``nextFlightEvent(armDoorbell:)`` reports its write's completion and, separately, its
/// durability, so that the next write can go out while earlier fdatasyncs are still on disk.
///
/// The caller (the WAL's flush loop, through `FlightBook`) keeps the rules that make this
/// safe: it never has two writes of one block in flight (they have no defined order on the
/// device), and it starts a write whose form is not durable by itself
/// (``WriteForm/isSelfDurable``) only when no other write is in flight, so that the fdatasync
/// linked to it covers every earlier write.
package protocol FlightEngine: IOEngine {
    /// How many requests may be in flight at once (at least 1).
    var maxFlights: Int { get }

    /// Submits `request` as flight `id` and returns without waiting (it goes to the kernel with
    /// the next wait).
    func start(_ request: WriteRequest, id: Int) throws(WALError)

    /// Waits for the next event of the flights started; with `armDoorbell`, ``ringDoorbell()``
    /// also ends the wait (``FlightEvent/doorbell``).
    func nextFlightEvent(armDoorbell: Bool) throws(WALError) -> FlightEvent

    /// An event reaped already, without waiting (the write and durability of a dsync write
    /// arrive in one completion: the caller takes both in one stretch outside its lock).
    func readyEvent() -> FlightEvent?

    /// Ends a ``nextFlightEvent(armDoorbell:)`` waiting with `armDoorbell` (any thread).
    func ringDoorbell()

    /// After a failure: waits until the kernel is done with every request started (so that no
    /// buffer is still read), and forgets them. False when that could not be established (the
    /// ring itself failed while completions were due): the kernel may still read the flights'
    /// buffers, which the caller must then never reuse or free (``AlignedBuffer/pinForever(_:)``).
    func abandonFlights() -> Bool
}

/// What ``FlightEngine/nextFlightEvent(armDoorbell:)`` reports.
package enum FlightEvent: Equatable, Sendable {
    /// The flight's write completed in full: its buffer is free, the next write may start.
    /// Not reported for a request without bytes (an fdatasync alone).
    case written(Int)
    /// The flight is durable: its fdatasync completed (every write completed before it was
    /// issued is durable), or its write durable by itself did (its own range only). Reported
    /// after ``written(_:)``, and only for a request that asked for durability.
    case synced(Int)
    /// ``FlightEngine/ringDoorbell()`` was called.
    case doorbell
}

/// A one-at-a-time engine seen as a ``FlightEngine`` of depth 1 (the POSIX engine): ``start(_:id:)``
/// writes the request at once and queues its events. So the WAL has one flush loop whatever
/// the engine, and no engine has methods that trap.
package final class SerialFlights: FlightEngine {
    private let engine: IOEngine
    @exclusivity(unchecked) private var events: [FlightEvent] = []

    package init(_ engine: IOEngine) {
        self.engine = engine
        events.reserveCapacity(2)
    }

    package var kind: IOEngineKind { engine.kind }
    package var maxFlights: Int { 1 }
    package func form(of durability: WriteDurability, isEmpty: Bool) -> WriteForm {
        engine.form(of: durability, isEmpty: isEmpty)
    }
    package func write(_ request: WriteRequest) throws(WALError) { try engine.write(request) }
    package func shutdown() { engine.shutdown() }

    package func start(_ request: WriteRequest, id: Int) throws(WALError) {
        precondition(events.isEmpty, "one flight at a time")
        try engine.write(request)
        if !request.bytes.isEmpty { events.append(.written(id)) }
        if request.durability != .none { events.append(.synced(id)) }
    }

    package func nextFlightEvent(armDoorbell: Bool) throws(WALError) -> FlightEvent {
        precondition(!events.isEmpty, "no flight in flight: nothing to wait for")
        return events.removeFirst()
    }

    package func readyEvent() -> FlightEvent? { events.isEmpty ? nil : events.removeFirst() }

    package func ringDoorbell() {}

    package func abandonFlights() -> Bool {
        events.removeAll(keepingCapacity: true)
        return true
    }
}
