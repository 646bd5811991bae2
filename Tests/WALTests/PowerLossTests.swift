import Foundation
import Synchronization
import Testing
@testable import WAL
@testable import WALCrash

/// Simulated power loss, sampled (see ``CrashStateModel``; ``CrashStateTests`` enumerates
/// small workloads exhaustively): committers run against a real directory
/// while the model follows every write and sync; at random moments it materialises what a
/// power cut could leave, together with the commits acknowledged by then. Each image is then
/// opened (recovery), checked with the crash campaign's ``LogVerifier`` — every acknowledged
/// record there with its exact bytes, contiguous LSNs, nothing never appended — and must take
/// a new commit.
///
/// Images per run: `WAL_POWER_LOSS_IMAGES` (default 40; `scripts/crash-test` runs 500).
@Suite("Power loss (simulated)")
struct PowerLossTests {
    static let images = ProcessInfo.processInfo.environment["WAL_POWER_LOSS_IMAGES"].flatMap(Int.init) ?? 40

    struct Outcome {
        var images = 0
        var acknowledgedChecked = 0
        var lost = 0
        var problems: [String] = []
    }

    @Test("Every record acknowledged before a power cut survives it", arguments: [false, true])
    func acknowledgedRecordsSurvivePowerLoss(encrypted: Bool) throws {
        let outcome = try run(encrypted: encrypted, acknowledgeOnAppend: false, images: Self.images)
        #expect(outcome.images == Self.images)
        #expect(outcome.acknowledgedChecked > 0)
        #expect(outcome.problems.isEmpty, "\(outcome.problems.prefix(10))")
        #expect(outcome.lost == 0)
        print("power loss (encryption \(encrypted ? "on" : "off")): \(outcome.images) images, "
              + "\(outcome.acknowledgedChecked) acknowledged records checked, lost = \(outcome.lost)")
    }

    @Test("The model does lose what was never synced (records acknowledged on append go missing)")
    func theModelLosesUnsyncedWrites() throws {
        let outcome = try run(encrypted: false, acknowledgeOnAppend: true, images: 20)
        #expect(outcome.lost > 0)
    }

    /// Runs in rounds of at most 40 images, each on a fresh directory: every image is verified
    /// in full, so one long run would cost time quadratic in the number of images.
    private func run(encrypted: Bool, acknowledgeOnAppend: Bool, images: Int) throws -> Outcome {
        var total = Outcome()
        var remaining = images
        while remaining > 0 {
            let round = try runRound(encrypted: encrypted, acknowledgeOnAppend: acknowledgeOnAppend, images: min(remaining, 40))
            total.images += round.images
            total.acknowledgedChecked += round.acknowledgedChecked
            total.lost += round.lost
            total.problems += round.problems
            remaining -= round.images
            if round.images == 0 { break }
        }
        return total
    }

    private func runRound(encrypted: Bool, acknowledgeOnAppend: Bool, images: Int) throws -> Outcome {
        try withTemporaryDirectory { root in
            let directory = root + "/wal"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let keyRing = KeyRing(current: .random(id: 3))
            var configuration = testConfiguration(directory, engine: .posix, segmentTargetSize: 64 << 10)
            configuration.bufferSize = 16 << 10
            if encrypted { configuration.encryption = keyRing }

            let model = CrashStateModel()
            let workload = Workload(seed: UInt64.random(in: 1...UInt64.max))
            let acknowledged = Mutex<[LSN: RecordID]>([:])
            let cuts = Mutex<(next: Int, taken: [(String, [LSN: RecordID])], rng: SplitMix64)>(
                (next: 3, taken: [], rng: SplitMix64(seed: workload.seed)))
            let done = Atomic<Bool>(false)

            let observe = FaultHooks.Handlers(observer: { event in
                model.record(event)
                cuts.withLock { cuts in
                    guard cuts.taken.count < images, model.events >= cuts.next else { return }
                    let image = root + "/image-\(cuts.taken.count)"
                    try? FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: false)
                    // Acknowledgements first, then the disk: every commit acknowledged by then
                    // had its sync recorded before, so the state holds it if nothing is lost.
                    let snapshot = acknowledged.withLock { $0 }
                    let disk = model.now
                    let choices = disk.choices(unit: .sector)
                    _ = try? disk.materialise(choices.random(using: &cuts.rng), of: choices, unit: .sector,
                                              source: directory, target: image)
                    cuts.taken.append((image, snapshot))
                    cuts.next = model.events + Int(cuts.rng.next() % 60) + 1
                    if cuts.taken.count == images { done.store(true, ordering: .relaxed) }
                }
            })
            try FaultHooks.shared.with(directory, observe) {
                let wal = try SegmentedWAL(configuration: configuration)
                runThreads(3) { writer in
                    var seq: UInt64 = 0
                    while !done.load(ordering: .relaxed) {
                        do {
                            let batch = writer == 2 ? Int(seq % 4) + 1 : 1
                            var lsns: [(LSN, RecordID)] = []
                            for _ in 0..<batch {
                                let id = RecordID(cycle: 0, writer: UInt32(writer), seq: seq)
                                let (tenant, vshard) = workload.routing(id)
                                lsns.append((try wal.append(.put, tenant: tenant, vshard: vshard, payload: workload.payload(id)), id))
                                seq += 1
                            }
                            if !acknowledgeOnAppend { try wal.waitUntilDurable(lsns.last!.0) }
                            acknowledged.withLock { for (lsn, id) in lsns { $0[lsn] = id } }
                        } catch {
                            Issue.record("commit failed: \(error)")
                            return
                        }
                    }
                }
                try wal.close()
            }

            var outcome = Outcome()
            let verifier = LogVerifier(workload: workload)
            var reopen = configuration
            reopen.encryption = keyRing  // mixed logs: the reader needs the key either way
            for (image, snapshot) in cuts.withLock({ $0.taken }) {
                reopen.directory = image
                outcome.images += 1
                do {
                    let wal = try SegmentedWAL(configuration: reopen)
                    let report = verifier.verify(wal, acknowledged: snapshot)
                    outcome.acknowledgedChecked += report.acknowledgedChecked
                    outcome.lost += report.lost
                    if !acknowledgeOnAppend {
                        outcome.problems += report.problems.map { "\(image): \($0)" }
                        let lsn = try wal.commit(.put, payload: [1, 2, 3])
                        if lsn != report.nextLSN { outcome.problems.append("\(image): new commit got LSN \(lsn), expected \(report.nextLSN)") }
                    }
                    try wal.close()
                } catch {
                    outcome.problems.append("\(image): \(error)")
                }
            }
            return outcome
        }
    }
}
