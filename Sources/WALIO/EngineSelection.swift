import Logging
import WALFormat

/// Chooses the I/O engine for a WAL: io_uring where the kernel allows it, POSIX otherwise
/// (driven as a ``FlightEngine`` of depth 1 through ``SerialFlights``).
package enum EngineSelection {
    /// - `.automatic`: io_uring, or POSIX with one info line saying why io_uring cannot run
    ///   (ENOSYS on old kernels or under seccomp, EPERM/EACCES, `kernel.io_uring_disabled`,
    ///   a missing opcode).
    /// - `.ioUring`: io_uring or ``WALError/engineUnavailable(engine:reason:)``.
    /// - `.posix`: POSIX.
    package static func make(_ choice: IOEngineChoice, syncMethod: IOUringSyncMethod, flushesInFlight: Int = 1,
                     logger: Logger) throws(WALError) -> FlightEngine {
        switch choice {
        case .posix:
            return SerialFlights(POSIXEngine())
        case .ioUring:
            return try IOUringEngine(syncMethod: syncMethod, flushesInFlight: flushesInFlight)
        case .automatic:
            do {
                return try IOUringEngine(syncMethod: syncMethod, flushesInFlight: flushesInFlight)
            } catch {
                logger.info("io_uring unavailable; using the POSIX engine", metadata: ["reason": "\(error)"])
                return SerialFlights(POSIXEngine())
            }
        }
    }
}
