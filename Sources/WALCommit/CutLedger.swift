import Synchronization
import WALFormat
import WALSegments

/// What an append hands the commit that made it: the record's LSN, and how many cuts
/// (``LogCut``) the log had seen then. A cut can hand the same LSN to another record; the
/// ticket lets a commit tell its own record from that one.
package struct AppendTicket: Sendable, Equatable {
    package let lsn: LSN
    let cuts: Int
}

/// Which records a wait is about (see ``LogWriter/waitUntilDurable(_:_:)``).
package enum DurabilityClaim: Sendable {
    /// Everything up to the LSN, whatever records hold it (``LogWriter/sync()``, point reads).
    case prefix
    /// The records up to the LSN as the caller knows them: an LSN that a reset (or a cut below
    /// the first retained record) removed fails with that cut's error instead of succeeding
    /// for the empty space below the log's new start.
    case lsn
    /// The one record the ticket was issued for: the wait fails with the cut's error when a cut
    /// removed it, even if another record has the same LSN since.
    case record(AppendTicket)
}

/// Every cut of the log's end made while the WAL is open, and what each removed: the commits
/// and reads that began before a cut ask it whether their record survived. The cut generation
/// (twice the cuts made, plus one while one is under way) is mirrored for lock-free readers.
/// Lock held, except ``generation``.
final class CutLedger {
    /// Every cut made, in order.
    @exclusivity(unchecked) private(set) var history: [LogCut] = []
    /// The lowest LSN that the cuts made so far leave meaning the record it named: below it, a
    /// reset (or a cut below the first retained record) removed every record, with this error.
    private(set) var floor: (lsn: LSN, error: WALError)?
    private let generationMirror = Atomic<UInt64>(0)

    /// Twice the number of cuts begun, plus one while one is under way (no lock needed).
    var generation: UInt64 { generationMirror.load(ordering: .sequentiallyConsistent) }

    /// The ticket for a record appended now.
    func ticket(_ lsn: LSN) -> AppendTicket { AppendTicket(lsn: lsn, cuts: history.count) }

    /// A cut begins: it is recorded and the generation turns odd. Returns the error a wait for
    /// a removed record gets.
    func begin(_ cut: LogCut) -> WALError {
        let removed = cut.kind == .reset ? WALError.logReset(to: cut.lsn) : WALError.truncated(after: cut.lsn)
        if cut.kind == .reset {
            floor = (cut.lsn + 1, removed)
        } else if let floor, cut.lsn + 1 < floor.lsn {
            self.floor = (cut.lsn + 1, removed)
        }
        generationMirror.add(1, ordering: .sequentiallyConsistent)  // odd: under way
        history.append(cut)
        return removed
    }

    /// The cut begun last has ended (or failed): the generation turns even.
    func end() {
        generationMirror.add(1, ordering: .sequentiallyConsistent)
    }

    /// The error of the first cut since `ticket` was issued that removed its record.
    func removal(of ticket: AppendTicket) -> WALError? {
        guard ticket.cuts < history.count else { return nil }  // no cut since: the usual case
        for cut in history.dropFirst(ticket.cuts) {
            switch cut.kind {
            case .reset: return .logReset(to: cut.lsn)
            case .truncateAfter where cut.lsn < ticket.lsn: return .truncated(after: cut.lsn)
            case .truncateAfter: continue
            }
        }
        return nil
    }

    /// Why a wait for `lsn` under `claim` fails now, if a cut removed what it is about.
    func removal(_ lsn: LSN, claim: DurabilityClaim) -> WALError? {
        switch claim {
        case .prefix: return nil
        case .lsn: return floor.flatMap { lsn < $0.lsn ? $0.error : nil }
        case .record(let ticket): return removal(of: ticket)
        }
    }
}
