import WALFormat
import WALEncryption
import WALSegments

/// Live tailing: the records from an LSN on, then each new one as soon as it is durable — for
/// replication and change feeds.
///
/// ```swift
/// for try await record in wal.records(from: lastShipped + 1, follow: true) {
///     try await replica.apply(record)
/// }
/// ```
///
/// Following another process's WAL (``SegmentedWAL/records(in:from:follow:pollInterval:recordTypes:keyRing:requirePlaintext:)``,
/// used by `wal dump --follow`) cannot see durability: that stream polls the directory and
/// yields each record once it is completely written (CRC valid), which a crash of the writer
/// before its next sync could still take back.
///
/// In-process, only durable records are ever yielded: a record read before its flush completed
/// is held back until the WAL reports it durable (so a follower never sees a record that a
/// crash could take back). The stream follows rollover into new segments and is unaffected by
/// truncation of segments behind it; it waits without a thread and without polling (it is
/// woken by the flush that makes the next record durable), and it asks for no flush itself.
/// At the live edge it reads the new records from the writer's memory (the last 1 MiB or
/// ring buffer written, whichever is larger, kept while any tailer exists), not from the file;
/// further behind, from the file.
/// So tailers cost committers the CPU to decode what they read, not disk reads. Cancelling
/// the consuming task ends the stream at once (`next()` returns nil), as does closing the WAL; a failed WAL ends it with
/// ``WALError/failed(_:)``, a damaged log with the replay error.
public struct LiveRecordStream: AsyncSequence, Sendable {
    /// The records, in LSN order.
    public typealias Element = WALRecord
    /// A stream ends with a ``WALError``: replay damage, a truncation that overtook it, or ``WALError/failed(_:)``.
    public typealias Failure = WALError

    let directory: String
    let from: LSN
    let recordTypes: Set<RecordType>
    let keyRing: KeyRing?
    let requirePlaintext: Bool
    let follow: Bool
    let source: Source

    package init(directory: String, from: LSN, recordTypes: Set<RecordType>, keyRing: KeyRing?, requirePlaintext: Bool,
                 follow: Bool, source: Source) {
        self.directory = directory
        self.from = from
        self.recordTypes = recordTypes
        self.keyRing = keyRing
        self.requirePlaintext = requirePlaintext
        self.follow = follow
        self.source = source
    }

    /// What tells the stream that new records exist.
    package enum Source: Sendable {
        /// The WAL of this process: durability notifications, no polling.
        case wal(any DurabilitySource)
        /// Another process's WAL: look again every interval; records count once written.
        case poll(Duration)
    }

    /// An iterator from the stream's first LSN. Each iterator reads the log on its own.
    public func makeAsyncIterator() -> Iterator {
        var cutsSeen = 0
        if case .wal(let writer) = source { cutsSeen = Int(writer.cutGeneration / 2) }
        return Iterator(stream: self, cursor: makeCursor(from: from), cutsSeen: cutsSeen)
    }

    func makeCursor(from lsn: LSN) -> ReplayCursor {
        var liveEdge: LiveEdgeCache?
        if case .wal(let writer) = source { liveEdge = writer.liveEdge }
        return ReplayCursor(directory: directory, from: lsn, recordTypes: recordTypes, keyRing: keyRing,
                            requirePlaintext: requirePlaintext, follow: true, liveEdge: liveEdge)
    }

    /// Reads the records of a ``LiveRecordStream``; see ``next()``.
    public struct Iterator: AsyncIteratorProtocol {
        /// The records, in LSN order.
        public typealias Element = WALRecord
        /// The error that ends the stream.
        public typealias Failure = WALError

        private let stream: LiveRecordStream
        private var cursor: ReplayCursor
        private var source: Source { stream.source }
        private var follow: Bool { stream.follow }
        /// A record read before it was durable, held back until it is.
        private var held: WALRecord?
        private var ended = false
        /// The LSN the previous look at the live edge wanted, and the wait before looking
        /// again when it was durable but not readable yet.
        private var lastLookedFor: LSN = 0
        private var backoffMilliseconds = 1
        /// How many cuts of the log's end (in-process) this iterator has accounted for.
        private var cutsSeen: Int

        init(stream: LiveRecordStream, cursor: ReplayCursor, cutsSeen: Int) {
            self.stream = stream
            self.cursor = cursor
            self.cutsSeen = cutsSeen
        }

        /// A cut of the log's end began since this iterator last looked (in-process only).
        private var cutBegan: Bool {
            guard case .wal(let writer) = source else { return false }
            return writer.cutGeneration != UInt64(cutsSeen) * 2
        }

        /// The LSN this iterator yields next.
        private var position: LSN { held?.lsn ?? cursor.nextLSN }

        /// In-process: whether the log's end was cut since this iterator last looked. Then,
        /// once the cut is finished, it ends the stream with ``WALError/truncated(after:)`` or
        /// ``WALError/logReset(to:)`` when the cut removed records at or below the position it
        /// had reached — never switching silently to new records under old LSNs — or starts
        /// reading again from its position (a cut above it changes nothing it will read).
        private mutating func catchUpWithCuts() async throws(WALError) -> Bool {
            guard case .wal(let writer) = source else { return false }
            var generation = writer.cutGeneration
            guard generation != UInt64(cutsSeen) * 2 else { return false }
            while generation % 2 == 1 {  // a cut is under way: it holds the WAL's lock briefly
                try? await Task.sleep(for: .milliseconds(1))
                generation = writer.cutGeneration
            }
            let position = self.position
            for cut in writer.cuts(after: cutsSeen) {
                switch cut.kind {
                case .truncateAfter where position > cut.lsn + 1:
                    throw WALError.truncated(after: cut.lsn)
                case .reset where position != cut.lsn + 1:
                    throw WALError.logReset(to: cut.lsn)
                default:
                    break
                }
            }
            cutsSeen = Int(generation / 2)
            held = nil  // at most the record at position, which the cut removed or rewrote
            cursor = stream.makeCursor(from: position)
            lastLookedFor = 0
            return true
        }

        /// The next durable record; waits for one at the live edge when following. nil when
        /// the task is cancelled, the WAL closes, or (not following) the durable end is reached.
        public mutating func next() async throws(WALError) -> WALRecord? {
            guard !ended else { return nil }
            do throws(WALError) {
                while true {
                    if Task.isCancelled { return end() }
                    if try await catchUpWithCuts() { continue }
                    if let record = held {
                        guard try await waitForDurable(record.lsn) else { return end() }
                        if cutBegan { continue }  // woken by a cut, not by durability
                        held = nil
                        return record
                    }
                    let next: WALRecord?
                    do throws(WALError) {
                        next = try cursor.next()
                    } catch {
                        // Bytes read while a cut rewrote the segment's end can look like damage:
                        // after a cut, look at where it left the log instead of believing them.
                        if cutBegan { continue }
                        throw error
                    }
                    if let record = next {
                        if cutBegan {
                            // Read across the start of a cut: drop it, look at where the cut left the log.
                            cursor = stream.makeCursor(from: record.lsn)
                            continue
                        }
                        guard case .wal(let writer) = source, record.lsn > writer.durableLSN else { return record }
                        guard follow else { return end() }  // the durable end of the log
                        held = record
                        continue
                    }
                    guard follow else { return end() }
                    // The live edge: sleep until the next record is durable, then look again.
                    let wanted = cursor.nextLSN
                    guard try await waitForDurable(wanted) else { return end() }
                    if case .wal = source, wanted == lastLookedFor {
                        // Durable, yet not readable at the last look: never spin on it; back off.
                        try? await Task.sleep(for: .milliseconds(backoffMilliseconds))
                        backoffMilliseconds = Swift.min(backoffMilliseconds * 2, 100)
                    } else {
                        backoffMilliseconds = 1
                    }
                    lastLookedFor = wanted
                    if case .wal(let writer) = source {
                        try cursor.refresh(activeSegment: writer.activeSegmentFirstLSN)
                    } else {
                        try cursor.refresh()
                    }
                }
            } catch {
                ended = true
                throw error
            }
        }

        /// Whether `lsn` became durable (polling: whether it is time to look again); false
        /// when the task was cancelled or the WAL closed.
        private func waitForDurable(_ lsn: LSN) async throws(WALError) -> Bool {
            switch source {
            case .wal(let writer):
                do {
                    return try await writer.durableLSN(reaching: lsn) != nil
                } catch .closed {
                    return false
                }
            case .poll(let interval):
                do {
                    try await Task.sleep(for: interval)
                    return true
                } catch {
                    return false  // cancelled
                }
            }
        }

        private mutating func end() -> WALRecord? {
            ended = true
            return nil
        }
    }
}

/// What a live stream needs of the writer in its own process — declared here, by the reader,
/// and provided by the commit layer (``LogWriter``), so that reading never depends on writing.
package protocol DurabilitySource: AnyObject, Sendable {
    /// The newest written bytes of the active segment (filled while tailers are registered).
    var liveEdge: LiveEdgeCache { get }
    /// The highest durable LSN (lock-free).
    var durableLSN: LSN { get }
    /// The active segment's first LSN; 0 once closed.
    var activeSegmentFirstLSN: LSN { get }
    /// Suspends until the durable LSN reaches `lsn` and returns it; nil when cancelled.
    func durableLSN(reaching lsn: LSN) async throws(WALError) -> LSN?
    /// Twice the number of cuts of the log's end made, plus one while one is under way.
    var cutGeneration: UInt64 { get }
    /// The cuts made since the first `count`, in order.
    func cuts(after count: Int) -> [LogCut]
}
