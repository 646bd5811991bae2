import Logging

/// Chooses the I/O engine for a WAL.
enum EngineSelection {
    static func make(_ choice: IOEngineChoice, logger: Logger) throws(WALError) -> IOEngine {
        switch choice {
        case .posix, .automatic:
            return POSIXEngine()
        case .ioUring:
            throw WALError.engineUnavailable(engine: "io_uring", reason: "not built yet")
        }
    }
}
