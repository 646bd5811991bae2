import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALCrash
@testable import WALSegments

/// Every crash state reopens with everything acknowledged (``CrashStateModel``).
///
/// Each scenario is a small deterministic workload run on a real directory with one engine
/// while the model records the trace. Then, at every moment of the trace (after each change
/// to a file or directory), every crash state the model allows is built — all of them when
/// there are at most ``exhaustiveLimit``, otherwise ``samples`` random ones — and each
/// distinct one is checked:
/// - `SegmentedWAL` opens it (the model never damages a sealed segment, so no refusal is
///   legitimate);
/// - replay returns contiguous LSNs, every record exactly as appended under its LSN (nothing
///   torn, stale or never appended), and every acknowledged LSN (at or above the truncation
///   floor) — else it is *lost*;
/// - then a new commit gets the next LSN, and after close + reopen (recovery after recovery)
///   the log is the same plus that record.
///
/// "Recovery's own cut" runs the open of crash states under a second model and checks every
/// crash state of the recovery itself. Environment: `WAL_CRASH_STATE_SCALE` multiplies each
/// workload's length and the samples per moment (`scripts/crash-test` sets it).
@Suite("Crash states (sector-granular model)")
struct CrashStateTests {
    static let scale = ProcessInfo.processInfo.environment["WAL_CRASH_STATE_SCALE"].flatMap(Int.init) ?? 1
    static let exhaustiveLimit = 4096
    static var samples: Int { 64 * scale }

    enum Scenario: String, CaseIterable, CustomStringConvertible {
        /// Commits of sizes that end anywhere in a block, so most flushes rewrite a partial block.
        case partialBlockRewrite
        /// Small segments: seal (trim + fsync), the preallocated spare renamed, directory fsync.
        case rolloverWithPreallocation
        /// Small segments without preallocation: the next segment created at rollover.
        case rolloverWithoutPreallocation
        /// Encrypted segments: a fresh preamble at the start of each.
        case encryptionPreamble
        /// Rollovers, then truncation of the oldest segments, then more commits.
        case truncation
        /// 512-byte records synced every third: records start exactly at block boundaries, so
        /// a flush often rewrites a partial block and writes the next one from its start (B1).
        case blockAlignedRecords
        /// A streaming writer: buffers fill and go out without a sync before each commit, so the
        /// commit's flush must make those earlier writes durable too (io_uring: a write linked
        /// to an fdatasync, not a write durable only for its own range).
        case streaming
        /// Several flushes in flight (``WALConfiguration/flushesInFlight`` 4): one writer asks for
        /// durability after most appends without waiting (records of sizes that end anywhere in
        /// a block, so most flushes rewrite the previous one's partial block while its fdatasync
        /// may still be on disk) and waits for an earlier request now and then.
        case pipelinedPartialBlockRewrite
        /// Several flushes in flight: a streaming writer (buffers fill and go out unsynced)
        /// asking for durability every sixth record and waiting for the previous request.
        case pipelinedStreaming
        /// Several flushes in flight: eight threads committing concurrently (group commit by
        /// the flusher's pipeline).
        case pipelinedConcurrentCommitters
        /// Small segments with preallocation, and rollovers that fail at each of their
        /// recoverable steps in turn (``rolloverFaults()``: the spare's rename, the open of the
        /// renamed spare, the O_DIRECT open of a created file); appends go on in the old segment.
        case failedRollover

        var description: String { rawValue }

        /// The scenarios to run: all, or those named in `WAL_CRASH_SCENARIOS` (comma-separated).
        static var selected: [Scenario] {
            guard let names = ProcessInfo.processInfo.environment["WAL_CRASH_SCENARIOS"] else { return allCases }
            return names.split(separator: ",").compactMap { Scenario(rawValue: String($0)) }
        }

        /// Runs with several flushes in flight.
        var isPipelined: Bool { rawValue.hasPrefix("pipelined") }
    }

    struct Report: CustomStringConvertible {
        var moments = 0
        var exhaustiveMoments = 0
        var sampledMoments = 0
        var states = 0
        var distinctImages = 0
        var acknowledgedChecked = 0
        var lost = 0
        var refused = 0
        /// Opens run under a second model ("recovery's own cut").
        var recoveries = 0
        /// The most fdatasyncs the trace had in flight at once.
        var maxSyncsInFlight = 0
        var problems: [String] = []

        mutating func add(_ other: Report) {
            moments += other.moments; exhaustiveMoments += other.exhaustiveMoments; sampledMoments += other.sampledMoments
            states += other.states; distinctImages += other.distinctImages
            acknowledgedChecked += other.acknowledgedChecked; lost += other.lost; refused += other.refused
            recoveries += other.recoveries
            maxSyncsInFlight = max(maxSyncsInFlight, other.maxSyncsInFlight)
            problems += other.problems
        }

        var description: String {
            (recoveries > 0 ? "\(recoveries) recoveries, " : "")
                + "\(moments) moments (\(exhaustiveMoments) enumerated exhaustively, \(sampledMoments) sampled), \(states) crash states, "
                + "\(distinctImages) distinct images opened, \(acknowledgedChecked) acknowledged records checked, "
                + "lost = \(lost), refused opens = \(refused)"
                + (maxSyncsInFlight > 0 ? ", at most \(maxSyncsInFlight) flushes in flight" : "")
        }
    }

    /// What the workload appended under each LSN, and the model that follows it.
    final class Log: Sendable {
        let model: CrashStateModel
        let appended = Mutex<[LSN: [UInt8]]>([:])
        let wal: SegmentedWAL

        /// Opens the WAL with `model` following its directory from the first system call on.
        init(_ configuration: WALConfiguration, model: CrashStateModel) throws {
            self.model = model
            wal = try FaultHooks.shared.with(configuration.directory, model.handlers) { try SegmentedWAL(configuration: configuration) }
        }

        func append(_ payload: [UInt8]) throws {
            let lsn = try wal.append(.put, payload: payload)
            appended.withLock { $0[lsn] = payload }
        }

        func commit(_ payload: [UInt8]) throws {
            let lsn = wal.nextLSN
            appended.withLock { $0[lsn] = payload }  // before any byte of it can reach the disk
            let committed = try wal.commit(.put, payload: payload)
            precondition(committed == lsn, "a single writer's LSN is nextLSN")
            model.acknowledge(lsn)
        }

        func sync() throws {
            let last = wal.nextLSN - 1
            try wal.sync()
            if last > 0 { model.acknowledge(last) }
        }

        /// Appends and asks for durability without waiting; returns the LSN.
        @discardableResult
        func appendRequesting(_ payload: [UInt8], request: Bool) throws -> LSN {
            let lsn = try wal.append(.put, payload: payload)
            appended.withLock { $0[lsn] = payload }
            if request { try wal.requestDurability(upTo: lsn) }
            return lsn
        }

        /// Waits until `lsn` is durable and acknowledges it (and so every LSN below it).
        func wait(_ lsn: LSN) throws {
            try wal.waitUntilDurable(lsn)
            model.acknowledge(lsn)
        }
    }

    static func configuration(_ scenario: Scenario, directory: String, engine: IOEngineChoice) -> WALConfiguration {
        var configuration = testConfiguration(directory, engine: engine, segmentTargetSize: 1 << 20)
        configuration.bufferSize = 8192
        configuration.preallocation = .none
        switch scenario {
        case .partialBlockRewrite, .blockAlignedRecords, .streaming:
            break
        case .pipelinedPartialBlockRewrite, .pipelinedStreaming, .pipelinedConcurrentCommitters:
            configuration.flushesInFlight = 4
        case .rolloverWithPreallocation, .truncation, .failedRollover:
            configuration.segmentTargetSize = 12 << 10
            configuration.preallocation = .allocated
        case .rolloverWithoutPreallocation:
            configuration.segmentTargetSize = 12 << 10
        case .encryptionPreamble:
            configuration.segmentTargetSize = 12 << 10
            configuration.encryption = keyRing
        }
        // `WAL_CRASH_DEPTH` runs every scenario with that many flushes in flight, and
        // `WAL_CRASH_SYNC_METHOD` with that io_uring sync method (scripts/test runs depth 4 and
        // `.linkedFdatasync` at depth 4 as well as the defaults).
        let environment = ProcessInfo.processInfo.environment
        if let depth = environment["WAL_CRASH_DEPTH"].flatMap(Int.init) { configuration.flushesInFlight = depth }
        if let method = environment["WAL_CRASH_SYNC_METHOD"].flatMap(IOUringSyncMethod.init(rawValue:)) {
            configuration.ioUringSyncMethod = method
        }
        return configuration
    }

    static let keyRing = KeyRing(current: .random(id: 7))

    /// Payload sizes that put record ends all over a block (a record of 482 bytes fills 512).
    static let sizes = [100, 482, 1000, 2018, 37, 4066, 700]

    static func payload(_ sequence: Int) -> [UInt8] {
        taggedPayload(writer: 9, sequence: sequence, size: sizes[sequence % sizes.count])
    }

    static func run(_ scenario: Scenario, log: Log) throws {
        let count = 18 * scale
        switch scenario {
        case .partialBlockRewrite, .encryptionPreamble, .rolloverWithPreallocation, .rolloverWithoutPreallocation:
            for sequence in 0..<count {
                if sequence % 4 == 3 {
                    try log.append(payload(sequence))  // an append the next commit carries with it
                } else {
                    try log.commit(payload(sequence))
                }
            }
        case .streaming:
            for sequence in 0..<(2 * count) {
                let payload = taggedPayload(writer: 7, sequence: sequence, size: 3000)
                if sequence % 6 == 5 { try log.commit(payload) } else { try log.append(payload) }
            }
        case .blockAlignedRecords:
            for sequence in 0..<(2 * count) {
                let payload = taggedPayload(writer: 8, sequence: sequence, size: 512 - RecordHeader.size)
                if sequence % 3 == 2 { try log.commit(payload) } else { try log.append(payload) }
            }
        case .pipelinedPartialBlockRewrite:
            var requested: [LSN] = []
            for sequence in 0..<(2 * count) {
                requested.append(try log.appendRequesting(payload(sequence), request: sequence % 4 != 3))
                if sequence % 5 == 4 { try log.wait(requested[requested.count - 3]) }
            }
            try log.wait(requested.last!)
        case .pipelinedStreaming:
            var previous: LSN = 0
            for sequence in 0..<(3 * count) {
                let request = sequence % 6 == 5
                let lsn = try log.appendRequesting(taggedPayload(writer: 6, sequence: sequence, size: 3000), request: request)
                if request {
                    if previous > 0 { try log.wait(previous) }
                    previous = lsn
                }
            }
            try log.wait(previous)
        case .pipelinedConcurrentCommitters:
            let failures = Mutex<[String]>([])
            runThreads(8) { writer in
                do {
                    for sequence in 0..<(count / 2) {
                        let size = sizes[(sequence + writer) % sizes.count]
                        let lsn = try log.appendRequesting(taggedPayload(writer: writer, sequence: sequence, size: size),
                                                           request: false)
                        try log.wait(lsn)
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            if let failure = failures.withLock({ $0.first }) { throw WALError.invalidConfiguration(failure) }
        case .failedRollover:
            // An append that triggers a failed rollover fails with the injected error (nothing
            // appended); the same record is committed again and goes into the old segment.
            // 3 KB records: rollovers every few commits; each recoverable step fails once.
            for sequence in 0..<(2 * count) {
                let payload = taggedPayload(writer: 5, sequence: sequence, size: 3000)
                do {
                    try log.commit(payload)
                } catch WALError.io(_, let errno, _) where errno == EMFILE {
                    try log.commit(payload)
                }
            }
        case .truncation:
            for sequence in 0..<count { try log.commit(payload(sequence)) }
            let checkpoint = log.wal.nextLSN - 2
            log.model.truncated(below: checkpoint)
            _ = try log.wal.truncate(before: checkpoint)
            for sequence in count..<(count + 6) { try log.commit(payload(sequence)) }
        }
    }

    @Test("Every crash state reopens with every acknowledged record",
          arguments: Scenario.selected, CrashStateModel.Unit.allCases)
    func everyCrashStateReopens(scenario: Scenario, unit: CrashStateModel.Unit) throws {
        var total = Report()
        for engine in availableEngines {
            let report = try Self.explore(scenario, engine: engine, unit: unit)
            print("crash states [\(scenario), \(engine), \(unit)]: \(report)")
            total.add(report)
        }
        #expect(total.problems.isEmpty, "\(total.problems.prefix(8))")
        #expect(total.lost == 0)
        #expect(total.refused == 0)
        #expect(total.acknowledgedChecked > 0)
        #expect(total.distinctImages > 10, "the model produced crash states")
        // Whether requests overlap an fdatasync depends on timing: a single writer's rarely do;
        // eight concurrent committers usually keep the flusher busy enough, but on a loaded
        // 2-core machine a run can happen to have one at a time — then it runs again (each
        // run's crash states are checked as well), up to four more times.
        if scenario == .pipelinedConcurrentCommitters && availableEngines.contains(.ioUring) {
            var again = 0
            while total.maxSyncsInFlight <= 1 && again < 4 {
                again += 1
                let report = try Self.explore(scenario, engine: .ioUring, unit: unit)
                #expect(report.problems.isEmpty && report.lost == 0 && report.refused == 0, "\(report.problems.prefix(8))")
                total.add(report)
            }
            #expect(total.maxSyncsInFlight > 1, "the trace had several flushes in flight (runs: \(again + 1))")
        }
    }

    @Test("Crashes during recovery's own cut reopen with every acknowledged record",
          arguments: CrashStateModel.Unit.allCases)
    func crashesDuringRecovery(unit: CrashStateModel.Unit) throws {
        let report = try Self.explore(.partialBlockRewrite, engine: .posix, unit: unit, recoverEach: true)
        print("crash states during recovery [\(unit)]: \(report)")
        #expect(report.problems.isEmpty, "\(report.problems.prefix(8))")
        #expect(report.lost == 0)
        #expect(report.refused == 0)
        #expect(report.distinctImages > 10)
    }

    /// The model is strong enough to matter: acknowledging on append (before any sync) must
    /// lose records in some crash state, and the old end-of-log rule (an LSN above the one due
    /// after zeros is a gap) would refuse some state — B1, found by sector-granular states.
    @Test("The model finds losses when nothing is synced, and the states B1 needs")
    func theModelIsStrongEnough() throws {
        try withTemporaryDirectory { root in
            let directory = root + "/wal"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let configuration = Self.configuration(.blockAlignedRecords, directory: directory, engine: .posix)
            let log = try Log(configuration, model: CrashStateModel())
            try FaultHooks.shared.with(directory, log.model.handlers) {
                for sequence in 0..<24 {
                    try log.append(taggedPayload(writer: 8, sequence: sequence, size: 512 - RecordHeader.size))
                    log.model.acknowledge(log.wal.nextLSN - 1)  // wrongly: nothing is durable yet
                    if sequence % 3 == 2 { try log.wal.sync() }
                }
                try log.wal.close()
            }
            var lost = 0
            var gapAfterPadding = 0
            var replayErrors = 0
            for disk in log.model.moments() {
                let choices = disk.choices(unit: .sector)
                guard choices.count <= Self.exhaustiveLimit else { continue }
                for state in choices.all() {
                    try withImageDirectory { image in
                        _ = try disk.materialise(state, of: choices, unit: .sector, source: directory, target: image)
                        if Self.hasRecordAfterPaddingAboveDue(image) { gapAfterPadding += 1 }
                        // The replay itself must work (the end-of-log rules); only then is a
                        // missing acknowledged record a loss.
                        do {
                            if try replayAll(image).count < disk.acknowledged { lost += 1 }
                        } catch {
                            replayErrors += 1
                        }
                    }
                }
            }
            #expect(replayErrors == 0)
            #expect(lost > 0, "acknowledging unsynced records must lose some")
            #expect(gapAfterPadding > 0, "sector-granular states include a lost partial-block rewrite before a persisted block")
        }
    }

    /// EMFILE at the recoverable steps of rollovers, one after the other: the first rename of
    /// the spare (attempt 1); the first open of the next new segment name (a renamed spare: it
    /// exists under its name when the open fails); the second open of the name after that (the
    /// O_DIRECT open of a created or renamed file); then the same again. Rollovers between
    /// them succeed.
    static func rolloverFaults(fired: Locked<[String]>) -> @Sendable (String, String) -> Int32? {
        let state = Locked((renames: 0, names: [String: Int](), opens: [String: Int]()))
        return { operation, path in
            let name = URL(fileURLWithPath: path).lastPathComponent
            let fault = state.withLock { state -> Int32? in
                switch operation {
                case "rename" where name == Preallocator.spareName:
                    state.renames += 1
                    return state.renames % 6 == 1 ? EMFILE : nil
                case "open" where SegmentName.parse(name) != nil:
                    let ordinal = state.names[name] ?? state.names.count  // 0: the first segment
                    state.names[name] = ordinal
                    let attempt = (state.opens[name] ?? 0) + 1
                    state.opens[name] = attempt
                    switch ordinal % 6 {
                    case 2: return attempt == 1 ? EMFILE : nil
                    case 4: return attempt == 2 ? EMFILE : nil
                    default: return nil
                    }
                default:
                    return nil
                }
            }
            if fault != nil { fired.withLock { $0.append("\(operation) \(name)") } }
            return fault
        }
    }

    // MARK: Exploring

    static func explore(_ scenario: Scenario, engine: IOEngineChoice, unit: CrashStateModel.Unit,
                        recoverEach: Bool = false) throws -> Report {
        try withTemporaryDirectory { root in
            let directory = root + "/wal"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let configuration = configuration(scenario, directory: directory, engine: engine)
            let log = try Log(configuration, model: CrashStateModel())
            var handlers = log.model.handlers
            let fired = Locked<[String]>([])
            if scenario == .failedRollover {
                handlers.error = rolloverFaults(fired: fired)
                handlers.rolloverRetryDistance = 8 << 10  // a failed rollover is retried 8 KiB later
            }
            try FaultHooks.shared.with(directory, handlers) {
                try run(scenario, log: log)
                try log.wal.close()
            }
            if scenario == .failedRollover {
                let faults = fired.withLock { $0 }
                print("failed rollovers [\(engine)]: \(faults.count) faults: \(faults.joined(separator: ", "))")
            }
            let appended = log.appended.withLock { $0 }
            var report = Report()
            let now = log.model.now
            report.problems += now.violations
            report.maxSyncsInFlight = now.maxSyncsInFlight
            var seen = Set<Int>()
            var rng = SplitMix64(seed: UInt64(scenario.rawValue.count * 31 + unit.rawValue))
            for disk in log.model.moments() {
                let choices = disk.choices(unit: unit)
                let exhaustive = choices.count <= exhaustiveLimit
                if !recoverEach {
                    report.moments += 1
                    if exhaustive { report.exhaustiveMoments += 1 } else { report.sampledMoments += 1 }
                }
                let states = exhaustive ? choices.all() : (0..<samples).map { _ in choices.random(using: &rng) }
                for state in states {
                    if !recoverEach { report.states += 1 }
                    try withImageDirectory { image in
                        let files = try disk.materialise(state, of: choices, unit: unit, source: directory, target: image)
                        var hasher = Hasher()
                        for name in files.keys.sorted() { hasher.combine(name); hasher.combine(files[name]!) }
                        hasher.combine(disk.acknowledged)
                        guard seen.insert(hasher.finalize()).inserted else { return }
                        if !recoverEach { report.distinctImages += 1 }
                        var reopen = configuration
                        reopen.directory = image
                        reopen.engine = .posix
                        if recoverEach {
                            report.add(try checkRecovery(of: image, configuration: reopen, appended: appended, disk: disk, unit: unit))
                        } else {
                            report.add(check(image, configuration: reopen, appended: appended,
                                             acknowledged: disk.acknowledged, floor: disk.floor))
                        }
                    }
                }
            }
            return report
        }
    }

    /// Runs the open of `image` under a second model and checks every crash state of that
    /// recovery (ftruncate, fsyncs, a new segment for encrypted logs) the same way.
    static func checkRecovery(of image: String, configuration: WALConfiguration, appended: [LSN: [UInt8]],
                              disk: CrashStateModel.Disk, unit: CrashStateModel.Unit) throws -> Report {
        let model = CrashStateModel()
        try model.preload(image)
        let before = model.events
        var report = Report()
        try FaultHooks.shared.with(image, model.handlers) {
            do throws(WALError) {
                try SegmentedWAL(configuration: configuration).close()
            } catch {
                report.refused += 1
                report.problems.append("refused: \(error)")
            }
        }
        report.recoveries = 1
        for recovering in model.moments().dropFirst(before) {
            let choices = recovering.choices(unit: unit)
            var rng = SplitMix64(seed: 5)
            let exhaustive = choices.count <= exhaustiveLimit
            if exhaustive { report.exhaustiveMoments += 1 } else { report.sampledMoments += 1 }
            let states = exhaustive ? choices.all() : (0..<samples).map { _ in choices.random(using: &rng) }
            for state in states {
                report.states += 1
                try withImageDirectory { crashed in
                    _ = try recovering.materialise(state, of: choices, unit: unit, source: image, target: crashed)
                    var reopen = configuration
                    reopen.directory = crashed
                    report.distinctImages += 1
                    report.add(check(crashed, configuration: reopen, appended: appended,
                                     acknowledged: disk.acknowledged, floor: disk.floor))
                }
            }
            report.moments += 1
        }
        return report
    }

    /// Opens a crash state and checks it (see the type's documentation).
    static func check(_ image: String, configuration: WALConfiguration, appended: [LSN: [UInt8]],
                      acknowledged: LSN, floor: LSN) -> Report {
        var report = Report()
        func problem(_ text: String) { report.problems.append("\(FilePaths.lastComponent(image)): \(text)") }
        func replay() -> [WALRecord]? {
            do { return try replayAll(image, keyRing: configuration.encryption) } catch { problem("replay: \(error)"); return nil }
        }
        do throws(WALError) {
            let wal = try SegmentedWAL(configuration: configuration)
            guard let records = replay() else { try? wal.close(); return report }
            var expected = records.first?.lsn ?? wal.nextLSN
            for record in records {
                if record.lsn != expected { problem("LSN \(record.lsn) follows \(expected - 1)") }
                if appended[record.lsn] != record.payload { problem("LSN \(record.lsn) holds bytes never appended under it") }
                expected = record.lsn + 1
            }
            if wal.nextLSN != expected { problem("nextLSN \(wal.nextLSN) after records ending at \(expected - 1)") }
            let present = Set(records.map(\.lsn))
            if acknowledged >= max(floor, 1) {
                for lsn in max(floor, 1)...acknowledged {
                    report.acknowledgedChecked += 1
                    if !present.contains(lsn) { report.lost += 1 }
                }
            }
            let fresh = Array("after the crash".utf8)
            let lsn = try wal.commit(.put, payload: fresh)
            if lsn != expected { problem("a new commit got LSN \(lsn), expected \(expected)") }
            try wal.close()
            let again = try SegmentedWAL(configuration: configuration)
            let after = replay() ?? []
            if after.map(\.lsn) != records.map(\.lsn) + [lsn] || after.last?.payload != fresh {
                problem("after recovery and one commit the log is \(after.first?.lsn ?? 0)...\(after.last?.lsn ?? 0), "
                        + "expected \(records.first?.lsn ?? lsn)...\(lsn)")
            }
            try again.close()
        } catch {
            report.refused += 1
            problem("refused or failed: \(error)")
        }
        return report
    }

    /// Whether the last segment has, after zeros skipped as padding, a valid record above the
    /// LSN due (the B1 state).
    static func hasRecordAfterPaddingAboveDue(_ directory: String) -> Bool {
        guard let last = try? SegmentDirectory.discover(directory).last,
              let file = try? SegmentFile.openForReading(path: last.path),
              let scanner = try? SegmentScanner(file: file) else { return false }
        defer { file.close() }
        var due = last.firstLSN
        while case .record(let header, _, let afterPadding)? = try? scanner.next() {
            if header.lsn > due && afterPadding { return true }
            if header.lsn != due { return false }
            due += 1
        }
        return false
    }
}

/// A fresh directory on tmpfs for one crash image (opened with buffered I/O there, which is
/// all a crash image needs: what is checked is what the bytes replay to).
func withImageDirectory<T>(_ body: (String) throws -> T) throws -> T {
    try withTemporaryDirectory(in: FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : "/tmp", body)
}
