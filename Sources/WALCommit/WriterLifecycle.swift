import WALFormat
import WALSegments

/// Where the write side of a WAL is in its life: open (appending to the active segment),
/// failed (a write, fdatasync, seal or cut failed: nothing more is written or acknowledged,
/// the segment is kept only to close its file), or closed (after a failure or not).
enum WriterLifecycle {
    case open(ActiveSegment)
    case failed(WALError, ActiveSegment)
    case closed(failure: WALError?)

    /// The active segment, while its file is open (open or failed).
    var segment: ActiveSegment? {
        switch self {
        case .open(let segment), .failed(_, let segment): segment
        case .closed: nil
        }
    }

    /// Why the write path failed, if it did (kept after close).
    var failure: WALError? {
        switch self {
        case .open: nil
        case .failed(let error, _): error
        case .closed(let failure): failure
        }
    }

    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }

    /// Why nothing more can be written (``WALError/closed`` first, then ``WALError/failed(_:)``);
    /// nil while open.
    var unusableReason: WALError? {
        switch self {
        case .open: nil
        case .failed(let error, _): .failed(error)
        case .closed: .closed
        }
    }

    /// The active segment, or why there is none to write to.
    func usableSegment() throws(WALError) -> ActiveSegment {
        switch self {
        case .open(let segment): return segment
        case .failed(let error, _): throw WALError.failed(error)
        case .closed: throw WALError.closed
        }
    }

    /// Fails the write path (sticky: the first failure is kept). Returns whether it was open.
    mutating func fail(_ error: WALError) -> Bool {
        guard case .open(let segment) = self else { return false }
        self = .failed(error, segment)
        return true
    }
}
