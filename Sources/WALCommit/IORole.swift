import Glibc

/// The right to call the engine and to take buffers out of the segment writer's ring outside
/// an append: one holder at a time (a committing thread, the flusher thread, rollover, a cut,
/// close). Taken and released under the WAL's lock; the holder may then work without the lock
/// on what the role guards (the engine, the flight book, the buffers out of the ring). Debug
/// builds remember the holder's thread and check it wherever the role is relied on.
struct IORole {
    private(set) var isHeld = false
    #if DEBUG
    private var holder: pthread_t?
    #endif

    mutating func take() {
        precondition(!isHeld, "the I/O role is held already")
        isHeld = true
        #if DEBUG
        holder = pthread_self()
        #endif
    }

    mutating func release() {
        assertHeldHere()
        isHeld = false
        #if DEBUG
        holder = nil
        #endif
    }

    /// The calling thread holds the role (checked in debug builds).
    func assertHeldHere() {
        #if DEBUG
        precondition(isHeld && holder.map { pthread_equal($0, pthread_self()) != 0 } == true,
                     "the I/O role is not held by this thread")
        #endif
    }
}
