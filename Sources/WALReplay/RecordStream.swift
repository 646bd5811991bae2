import WALFormat

/// A stream of records in LSN order, read from disk as it is consumed.
///
/// Use it as a synchronous cursor:
/// ```swift
/// var records = wal.records(from: checkpoint)
/// while let record = try records.next() { apply(record) }
/// ```
/// or as an `AsyncSequence`: `for try await record in wal.records(from: checkpoint) { ... }`.
///
/// A damaged log ends the stream with a ``WALError`` at the damaged record, after every
/// record before it; a torn tail of the last segment ends it quietly.
public struct RecordStream: AsyncSequence, AsyncIteratorProtocol {
    /// The records, in LSN order.
    public typealias Element = WALRecord
    /// The replay error that ends the stream at a damaged record.
    public typealias Failure = WALError

    private let cursor: ReplayCursor

    package init(cursor: ReplayCursor) {
        self.cursor = cursor
    }

    /// The next record, or nil at the end of the log.
    public mutating func next() throws(WALError) -> WALRecord? {
        try cursor.next()
    }

    /// Lends the next record to `body` without copying its payload (see ``RecordView``) and
    /// returns what `body` returns; nil at the end of the log. For replay that applies each
    /// record and keeps nothing: one allocation per record fewer than ``next()``.
    public mutating func withNextRecord<R>(_ body: (RecordView) throws -> R) throws -> R? {
        var failure: (any Error)?
        let result = try cursor.nextView { (view) -> R? in
            do {
                return try body(view)
            } catch {
                failure = error
                return nil
            }
        }
        if let failure { throw failure }
        return result ?? nil
    }

    /// The stream itself: it is its own iterator, so iterating a copy also advances the original's reader position, which the copy shares.
    public func makeAsyncIterator() -> RecordStream { self }

    /// Calls `body` with each remaining record.
    public mutating func forEach(_ body: (WALRecord) throws -> Void) throws {
        while let record = try next() { try body(record) }
    }
}

/// One page of records: at most the number asked for, and whether more follow.
public struct RecordPage: Sendable, Equatable {
    /// The records, in LSN order.
    public var records: [WALRecord]
    /// True when the page is full and the log continues past it.
    public var hasMore: Bool

    /// A page of `records`; `hasMore` tells whether the log continues past them.
    public init(records: [WALRecord], hasMore: Bool) {
        self.records = records
        self.hasMore = hasMore
    }
}
