import Foundation
import Synchronization
@testable import WAL
@testable import WALIO

/// What a power cut could leave on disk, rebuilt from the trace of the WAL's own file-system
/// changes (``SyscallEvent``: both engines report them, io_uring from its completions).
///
/// SIGKILL keeps the page cache, so it never loses an unsynced write; a power cut on a device
/// with a volatile write cache does. The model's rules, for POSIX file systems with ordered
/// metadata journalling (ext4, xfs) on such a device — the states ALICE (OSDI '14) and
/// CrashMonkey (OSDI '18) explore:
/// - **Data.** A file's bytes made durable by its last fsync/fdatasync stay — with several
///   flushes in flight (io_uring), an fdatasync makes durable only what was written before it
///   was *issued* (``SyscallEvent/syncStarted(path:id:)``), once it *completes*
///   (``SyscallEvent/syncFinished(path:id:)``): writes between the two stay pending, and
///   fdatasyncs may complete in any order; a write durable by
///   itself (io_uring's `RWF_DSYNC`) makes its own range durable and nothing else — one issued
///   while earlier writes of the file were unsynced is recorded as a violation. Every write since
///   then is split into units — 512-byte sectors, or 4096-byte blocks as a separate mode — at
///   absolute file offsets, and each unit independently holds its durable content or the
///   content of *any one* of the writes since that covered it: a later block may persist while
///   an earlier one, or the rewrite of an earlier block, is lost; a write may persist while an
///   earlier one did not.
/// - **File size.** `ftruncate` and `fallocate` since the last sync persist as a prefix (they
///   are journalled in order); a write that extends the file persists as far as its units do.
/// - **Directory entries.** Creations, renames and unlinks since the directory's last fsync
///   persist as a prefix of their order (journalled in order), so a file created or renamed but
///   not yet fsynced in its directory may be missing or under its old name.
///
/// Two choices that give the same bytes give the same state, so a unit whose candidate
/// contents are all equal (a rewrite of unchanged bytes, zeros over zeros or past the end) is
/// not a choice at all: that is what keeps exhaustive enumeration small around the writer's
/// partial-block rewrites.
final class CrashStateModel: Sendable {
    /// The granularity at which a device may persist part of a write.
    enum Unit: Int, Sendable, CaseIterable, CustomStringConvertible {
        case sector = 512
        case block = 4096
        var description: String { self == .sector ? "512-byte sectors" : "4096-byte blocks" }
    }

    enum Entry: Sendable {
        case event(SyscallEvent)
        /// Every LSN up to this one was acknowledged (a commit returned).
        case acknowledged(LSN)
        /// Truncation was asked to drop records below this LSN: a crash state may lack them.
        case truncatedBelow(LSN)
        /// `truncate(after:)` (or, with `reset`, `reset(to:)`) returned: the log's end is the LSN.
        case cut(LSN, reset: Bool)
    }

    private let trace = Mutex<[Entry]>([])

    func record(_ event: SyscallEvent) { trace.withLock { $0.append(.event(event)) } }
    func acknowledge(_ lsn: LSN) { trace.withLock { $0.append(.acknowledged(lsn)) } }
    func truncated(below lsn: LSN) { trace.withLock { $0.append(.truncatedBelow(lsn)) } }
    func cut(after lsn: LSN, reset: Bool) { trace.withLock { $0.append(.cut(lsn, reset: reset)) } }

    /// The handlers that feed this model from a directory's system calls.
    var handlers: FaultHooks.Handlers { FaultHooks.Handlers(observer: { [self] event in record(event) }) }

    var entries: [Entry] { trace.withLock { $0 } }

    /// Events recorded so far (acknowledgements not counted).
    var events: Int { trace.withLock { $0.reduce(0) { count, entry in if case .event = entry { count + 1 } else { count } } } }

    /// Makes the files of `directory` as they are now the durable starting point of the trace
    /// (for a model that follows a recovery of an existing image).
    func preload(_ directory: String) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let path = directory + "/" + name
            record(.create(path: path))
            record(.write(path: path, offset: 0, bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
            record(.sync(path: path))
        }
        record(.syncDirectory(path: directory))
    }

    // MARK: The disk at a moment

    /// A pending change to a file's content or size.
    fileprivate enum Operation {
        case write(offset: Int64, bytes: [UInt8])
        case resize(length: Int64, shrinkOnly: Bool)
    }

    fileprivate struct File {
        var durable: [UInt8] = []
        var pending: [Operation] = []
        /// Operations ever applied to `durable` from `pending` (so that an fdatasync issued
        /// after the first n operations of the file's history makes exactly those durable).
        var applied = 0
        /// Writes durable by themselves still in flight: their places in the file's history.
        var durableWritesInFlight: Set<Int> = []

        /// `count` bytes at `offset` of a write durable by itself in flight completed: they
        /// become durable; the write leaves the pending changes once all of it has.
        mutating func completeDurableWrite(offset: Int64, count: Int, violations: inout [String], path: String,
                                           syncsInFlight: Bool) {
            guard let position = durableWritesInFlight.first(where: { position in
                guard case .write(let o, let b) = pending[position - applied] else { return false }
                return o <= offset && offset + Int64(count) <= o + Int64(b.count)
            }), case .write(let start, let bytes) = pending[position - applied] else {
                violations.append("\(path): a durable write completed at offset \(offset) that was never issued")
                return
            }
            if syncsInFlight {
                violations.append("\(path): a durable write completed while an fdatasync of the file was in flight")
            }
            let from = Int(offset - start), to = from + count
            CrashStateModel.apply(.write(offset: offset, bytes: Array(bytes[from..<to])), to: &durable)
            durableWritesInFlight.remove(position)
            if to < bytes.count {
                // A short write: the rest is resubmitted, still in flight.
                pending[position - applied] = .write(offset: offset + Int64(count), bytes: Array(bytes[to...]))
                durableWritesInFlight.insert(position)
                return
            }
            // Out of the pending changes; the ones after it keep their places in the history.
            pending.remove(at: position - applied)
            applied += 1
            durableWritesInFlight = Set(durableWritesInFlight.map { $0 < position ? $0 + 1 : $0 })
        }

        mutating func makeDurable(through count: Int) {
            let n = min(count - applied, pending.count)
            guard n > 0 else { return }
            for operation in pending.prefix(n) { CrashStateModel.apply(operation, to: &durable) }
            pending.removeFirst(n)
            applied += n
            durableWritesInFlight = durableWritesInFlight.filter { $0 >= applied }
        }
    }

    fileprivate enum EntryChange {
        case create(name: String, file: Int)
        case rename(from: String, to: String)
        case unlink(name: String)
    }

    /// The disk as the trace left it at one moment: durable state plus everything pending.
    struct Disk {
        fileprivate var files: [File] = []
        fileprivate var names: [String: Int] = [:]
        fileprivate var durableNames: [String: Int] = [:]
        fileprivate var pendingEntries: [EntryChange] = []
        /// The highest LSN acknowledged so far, and the truncation floor.
        var acknowledged: LSN = 0
        var floor: LSN = 0
        /// Writes that were durable only for their own range (`RWF_DSYNC`) while earlier writes
        /// of the same file were still unsynced: such a write makes nothing else durable, so
        /// acknowledging on it would be a bug. The tests require none.
        var violations: [String] = []
        /// fdatasyncs issued and not completed: the file and how much of its history each covers.
        fileprivate var syncsInFlight: [Int: (file: Int, through: Int)] = [:]
        /// The most flushes of one trace in flight at once (several flushes in flight):
        /// fdatasyncs and writes durable by themselves.
        var maxSyncsInFlight = 0

        mutating func apply(_ entry: Entry) {
            switch entry {
            case .acknowledged(let lsn): acknowledged = max(acknowledged, lsn)
            case .truncatedBelow(let lsn): floor = max(floor, lsn)
            case .cut(let lsn, let reset):
                acknowledged = min(acknowledged, lsn)
                if reset { acknowledged = lsn; floor = lsn + 1 }
            case .event(let event): apply(event)
            }
        }

        private mutating func apply(_ event: SyscallEvent) {
            switch event {
            case .create(let path):
                guard names[path] == nil else { return }
                files.append(File())
                names[path] = files.count - 1
                pendingEntries.append(.create(name: path, file: files.count - 1))
            case .write(let path, let offset, let bytes):
                guard let file = names[path] else { return }
                files[file].pending.append(.write(offset: offset, bytes: bytes))
            case .durableWriteIssued(let path, let offset, let bytes):
                guard let file = names[path] else { return }
                let f = files[file]
                let others = f.pending.indices.filter { !f.durableWritesInFlight.contains(f.applied + $0) }
                if !others.isEmpty {
                    violations.append("\(path): a write durable for its own range only, at offset \(offset), "
                                      + "issued while \(others.count) earlier changes were unsynced")
                }
                let blocks = offset / 4096 ... (offset + Int64(bytes.count) - 1) / 4096
                for position in f.durableWritesInFlight {
                    guard case .write(let o, let b) = f.pending[position - f.applied] else { continue }
                    if (o / 4096 ... (o + Int64(b.count) - 1) / 4096).overlaps(blocks) {
                        violations.append("\(path): two writes of block \(max(o / 4096, blocks.lowerBound)) in flight at once")
                    }
                }
                files[file].durableWritesInFlight.insert(f.applied + f.pending.count)
                files[file].pending.append(.write(offset: offset, bytes: bytes))
                maxSyncsInFlight = max(maxSyncsInFlight, syncsInFlight.count + files[file].durableWritesInFlight.count)
            case .durableWriteCompleted(let path, let offset, let count):
                guard let file = names[path] else { return }
                files[file].completeDurableWrite(offset: offset, count: count, violations: &violations, path: path,
                                                 syncsInFlight: syncsInFlight.values.contains {
                                                     // one whose writes a later sync made durable already is no matter
                                                     $0.file == file && $0.through > files[file].applied
                                                 })
            case .truncate(let path, let length):
                guard let file = names[path] else { return }
                files[file].pending.append(.resize(length: length, shrinkOnly: false))
            case .allocate(let path, let length):
                guard let file = names[path] else { return }
                files[file].pending.append(.resize(length: length, shrinkOnly: true))
            case .sync(let path):
                guard let file = names[path] else { return }
                files[file].makeDurable(through: files[file].applied + files[file].pending.count)
            case .syncStarted(let path, let id):
                guard let file = names[path] else { return }
                syncsInFlight[id] = (file, files[file].applied + files[file].pending.count)
                maxSyncsInFlight = max(maxSyncsInFlight, syncsInFlight.count)
            case .syncFinished(_, let id):
                guard let (file, through) = syncsInFlight.removeValue(forKey: id) else { return }
                files[file].makeDurable(through: through)
            case .rename(let from, let to):
                guard let file = names.removeValue(forKey: from) else { return }
                names[to] = file
                pendingEntries.append(.rename(from: from, to: to))
            case .unlink(let path):
                guard names.removeValue(forKey: path) != nil else { return }
                pendingEntries.append(.unlink(name: path))
            case .syncDirectory:
                durableNames = names
                pendingEntries.removeAll()
            }
        }

        /// The choices a crash now has, as a mixed-radix number: one digit per unit that has
        /// more than one possible content, one per file for how many of its size changes
        /// persisted, one for how many directory changes persisted.
        func choices(unit: Unit) -> Choices {
            var units: [Choices.UnitChoice] = []
            var resizes: [(file: Int, count: Int)] = []
            for (index, file) in files.enumerated() where !file.pending.isEmpty {
                var candidates: [Int64: [Int]] = [:]  // unit offset → operations that wrote it
                var resizeCount = 0
                for (position, operation) in file.pending.enumerated() {
                    switch operation {
                    case .write(let offset, let bytes):
                        var start = offset / Int64(unit.rawValue) * Int64(unit.rawValue)
                        while start < offset + Int64(bytes.count) {
                            candidates[start, default: []].append(position)
                            start += Int64(unit.rawValue)
                        }
                    case .resize:
                        resizeCount += 1
                    }
                }
                if resizeCount > 0 { resizes.append((index, resizeCount)) }
                for (offset, writers) in candidates.sorted(by: { $0.key < $1.key }) {
                    // Distinct contents only: the durable bytes first (or "not written"), then
                    // each write's bytes for this unit unless an earlier option has them.
                    var options: [Int?] = [nil]
                    var seen: [[UInt8]] = [CrashStateModel.content(of: file.durable, at: offset, unit: unit)]
                    for writer in writers {
                        let bytes = CrashStateModel.content(of: file.pending[writer], at: offset, unit: unit, over: file.durable)
                        if seen.contains(bytes) { continue }
                        seen.append(bytes)
                        options.append(writer)
                    }
                    if options.count > 1 { units.append(.init(file: index, offset: offset, options: options)) }
                }
            }
            return Choices(units: units, resizes: resizes, directoryChanges: pendingEntries.count)
        }

        /// Writes the state that `choice` picks into `target` (names under `source` rewritten).
        func materialise(_ choice: [Int], of choices: Choices, unit: Unit, source: String, target: String) throws -> [String: [UInt8]] {
            var digit = 0
            var picked: [Int: [Int64: Int]] = [:]  // file → unit offset → operation index
            for unitChoice in choices.units {
                if let writer = unitChoice.options[choice[digit]] { picked[unitChoice.file, default: [:]][unitChoice.offset] = writer }
                digit += 1
            }
            var resizesKept: [Int: Int] = [:]
            for resize in choices.resizes {
                resizesKept[resize.file] = choice[digit]
                digit += 1
            }
            var entries = durableNames
            for change in pendingEntries.prefix(choice[digit]) {
                switch change {
                case .create(let name, let file): entries[name] = file
                case .rename(let from, let to): if let file = entries.removeValue(forKey: from) { entries[to] = file }
                case .unlink(let name): entries.removeValue(forKey: name)
                }
            }
            var image: [String: [UInt8]] = [:]
            for (name, index) in entries where name.hasPrefix(source + "/") {
                let file = files[index]
                var bytes = file.durable
                var resizesSeen = 0
                let chosen = picked[index] ?? [:]
                for (position, operation) in file.pending.enumerated() {
                    switch operation {
                    case .write(let offset, let data):
                        var start = offset / Int64(unit.rawValue) * Int64(unit.rawValue)
                        while start < offset + Int64(data.count) {
                            if chosen[start] == position {
                                let from = max(start, offset), to = min(start + Int64(unit.rawValue), offset + Int64(data.count))
                                CrashStateModel.apply(.write(offset: from, bytes: Array(data[Int(from - offset)..<Int(to - offset)])), to: &bytes)
                            }
                            start += Int64(unit.rawValue)
                        }
                    case .resize:
                        if resizesSeen < (resizesKept[index] ?? 0) { CrashStateModel.apply(operation, to: &bytes) }
                        resizesSeen += 1
                    }
                }
                image[String(name.dropFirst(source.count + 1))] = bytes
            }
            for (name, bytes) in image { try Data(bytes).write(to: URL(fileURLWithPath: target + "/" + name)) }
            return image
        }
    }

    /// The crash states of one moment.
    struct Choices {
        struct UnitChoice {
            var file: Int
            var offset: Int64
            /// nil: the durable content; otherwise the index of the pending write whose bytes it holds.
            var options: [Int?]
        }
        var units: [UnitChoice]
        var resizes: [(file: Int, count: Int)]
        var directoryChanges: Int

        /// The radix of each digit.
        var radices: [Int] { units.map(\.options.count) + resizes.map { $0.count + 1 } + [directoryChanges + 1] }

        /// How many states there are (saturating).
        var count: Int {
            radices.reduce(1) { total, radix in total.multipliedReportingOverflow(by: radix).overflow ? Int.max : total * radix }
        }

        /// Every state, in order (only for counts that fit).
        func all() -> [[Int]] {
            var result: [[Int]] = []
            var digits = [Int](repeating: 0, count: radices.count)
            let radices = radices
            while true {
                result.append(digits)
                var position = 0
                while position < digits.count {
                    digits[position] += 1
                    if digits[position] < radices[position] { break }
                    digits[position] = 0
                    position += 1
                }
                if position == digits.count { return result }
            }
        }

        func random<R: RandomNumberGenerator>(using rng: inout R) -> [Int] {
            radices.map { Int.random(in: 0..<$0, using: &rng) }
        }
    }

    /// The disk after each event of the trace, in order (with the acknowledgements up to it).
    func moments() -> [Disk] {
        var disk = Disk()
        var result: [Disk] = []
        for entry in entries {
            disk.apply(entry)
            if case .event = entry { result.append(disk) }
        }
        return result
    }

    /// The disk now.
    var now: Disk {
        var disk = Disk()
        for entry in entries { disk.apply(entry) }
        return disk
    }

    // MARK: Byte helpers

    fileprivate static func apply(_ operation: Operation, to bytes: inout [UInt8]) {
        switch operation {
        case .write(let offset, let data):
            let end = Int(offset) + data.count
            if bytes.count < end { bytes.append(contentsOf: repeatElement(0, count: end - bytes.count)) }
            bytes.replaceSubrange(Int(offset)..<end, with: data)
        case .resize(let length, let shrinkOnly):
            if bytes.count > Int(length) {
                if !shrinkOnly { bytes.removeSubrange(Int(length)...) }
            } else {
                bytes.append(contentsOf: repeatElement(0, count: Int(length) - bytes.count))
            }
        }
    }

    /// The unit at `offset` of `bytes`, zero-extended past the end (past the end reads as
    /// the end of data, like zeros: the reader cannot tell them apart).
    fileprivate static func content(of bytes: [UInt8], at offset: Int64, unit: Unit) -> [UInt8] {
        let start = Int(offset), end = start + unit.rawValue
        var slice = start < bytes.count ? Array(bytes[start..<min(end, bytes.count)]) : []
        if slice.count < unit.rawValue { slice += repeatElement(0, count: unit.rawValue - slice.count) }
        return slice
    }

    /// The unit at `offset` as `operation` would leave it on top of `durable`.
    fileprivate static func content(of operation: Operation, at offset: Int64, unit: Unit, over durable: [UInt8]) -> [UInt8] {
        var slice = content(of: durable, at: offset, unit: unit)
        if case .write(let start, let data) = operation {
            let from = max(offset, start), to = min(offset + Int64(unit.rawValue), start + Int64(data.count))
            if from < to {
                slice.replaceSubrange(Int(from - offset)..<Int(to - offset), with: data[Int(from - start)..<Int(to - start)])
            }
        }
        return slice
    }
}
