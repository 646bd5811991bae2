import WALFormat
import WALIO

/// The flusher thread and its doorbell. The thread runs the WAL's flush loop whenever a full
/// buffer is queued or someone waits and the I/O role is free, and sleeps on ``wake``
/// otherwise (nothing polls). While the role holder waits for completions, ``listening`` says
/// what new demand should do: ring the engine's doorbell (``FlightEngine/ringDoorbell()``) when
/// a flight could start beside those in flight, or nothing.
final class Flusher {
    /// What new demand does while the loop waits for completions.
    enum Listening: Equatable {
        /// Nothing: the loop cannot start a flight now.
        case no
        /// Ring: no write is in flight, any demand starts one.
        case anyDemand
        /// Ring once the ring holds a whole block at or after `notBefore` with a record above
        /// `covered` (what the flights in flight make durable).
        case wholeBlock(notBefore: Int64, covered: LSN)
    }

    /// Signalled to wake the thread.
    let wake: ConditionLock.Condition
    /// Set (lock held) by the loop before it waits, cleared when it wakes.
    @exclusivity(unchecked) var listening = Listening.no
    @exclusivity(unchecked) private var rung = false
    @exclusivity(unchecked) private(set) var isStopping = false
    private var thread: BackgroundThread?

    init(lock: ConditionLock) {
        wake = ConditionLock.Condition(lock)
    }

    /// Starts the thread running `body` (which returns when ``isStopping``).
    func start(_ body: @escaping @Sendable () -> Void) {
        thread = BackgroundThread(name: "wal-flusher", body)
    }

    /// The thread's kernel id (lock held).
    var threadID: Int32? { thread?.threadID }

    /// Rings the engine's doorbell, once per wait (lock held; the caller checked ``listening``).
    func ring(_ engine: FlightEngine) {
        guard !rung else { return }
        rung = true
        engine.ringDoorbell()
    }

    /// The loop woke (lock held): nothing listens until it waits again.
    func stopListening() {
        listening = .no
        rung = false
    }

    /// Asks the thread to stop (lock held); returns it to join after the lock is released.
    func stop() -> BackgroundThread? {
        isStopping = true
        wake.signal()
        defer { thread = nil }
        return thread
    }
}
