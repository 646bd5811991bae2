import Testing
import WALFormat
@testable import WALReplay

/// ``EndOfLog/decide(_:due:segmentFirstLSN:place:)``, row by row: the table of docs/FORMAT.md
/// ("Where a log ends"), every finding in every place.
@Suite("The end-of-log table")
struct EndOfLogTests {
    typealias Row = (finding: EndOfLog.Finding, due: LSN, sealed: EndOfLog.Decision, last: EndOfLog.Decision,
                     liveEdge: EndOfLog.Decision, note: String)

    /// Segment first LSN 10 throughout; `due` 10 is the segment's first record.
    static let rows: [Row] = [
        (.record(lsn: 12, afterPadding: false), 12, .record, .record, .record, "the record due"),
        (.record(lsn: 12, afterPadding: true), 12, .record, .record, .record, "the record due after padding"),
        (.endOfData, 12, .endOfSegment, .endOfLog, .liveEdge, "end of data"),
        (.invalid(reason: "bad magic"), 12, .corruption(reason: "bad magic"), .endOfLog, .liveEdge, "torn or damaged bytes"),
        (.record(lsn: 14, afterPadding: false), 12, .gap(found: 14), .gap(found: 14), .gap(found: 14),
         "a higher LSN right after a record is never a crash"),
        (.record(lsn: 14, afterPadding: true), 12, .gap(found: 14), .endOfLog, .liveEdge,
         "a higher LSN after padding: a lost block before a persisted one"),
        (.record(lsn: 9, afterPadding: false), 10, .corruption(reason: "first record has LSN 9, but the segment's name says 10"),
         .corruption(reason: "first record has LSN 9, but the segment's name says 10"),
         .corruption(reason: "first record has LSN 9, but the segment's name says 10"), "a misnamed segment"),
        (.record(lsn: 11, afterPadding: false), 12, .corruption(reason: "record repeats LSN 11"), .endOfLog, .liveEdge,
         "a lower LSN after a record: stale bytes"),
        (.record(lsn: 11, afterPadding: true), 12, .corruption(reason: "record repeats LSN 11"), .endOfLog, .liveEdge,
         "a lower LSN after padding: stale bytes"),
    ]

    @Test("each row decides as the table says", arguments: rows.indices)
    func row(index: Int) {
        let row = Self.rows[index]
        for (place, expected) in [(EndOfLog.Place.sealed, row.sealed), (.last, row.last), (.liveEdge, row.liveEdge)] {
            let decision = EndOfLog.decide(row.finding, due: row.due, segmentFirstLSN: 10, place: place)
            #expect(decision == expected, "\(row.note), \(place)")
        }
    }
}
