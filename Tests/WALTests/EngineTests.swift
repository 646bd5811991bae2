import Foundation
import Logging
import Testing
@testable import WAL
@testable import WALCrash

@Suite("I/O engines")
struct EngineTests {
    /// `scripts/test` runs the suite twice: normally (io_uring expected) and under
    /// `scripts/without-io-uring` with `SWIFT_WAL_EXPECTED_ENGINE=posix`.
    static let expectedEngine = ProcessInfo.processInfo.environment["SWIFT_WAL_EXPECTED_ENGINE"] ?? "io_uring"
    static let ioUringAvailable = availableEngines.contains(.ioUring)

    @Test func automaticChoosesTheExpectedEngine() throws {
        try withTemporaryDirectory { dir in
            let handler = CapturingLogHandler()
            var configuration = testConfiguration(dir)
            configuration.logger = Logger(label: "test", factory: { _ in handler })
            let wal = try SegmentedWAL(configuration: configuration)
            #expect(wal.engine.rawValue == Self.expectedEngine)
            let fallbackLines = handler.messages.withLock { $0.filter { $0.1.contains("io_uring unavailable") } }
            if wal.engine == .posix {
                #expect(fallbackLines.count == 1, "one info line saying why")
                #expect(fallbackLines.first?.0 == .info)
            } else {
                #expect(fallbackLines.isEmpty)
            }
        }
    }

    @Test(.enabled(if: !ioUringAvailable, "io_uring works here; run under scripts/without-io-uring"))
    func forcedIOUringThrowsWhereUnavailable() throws {
        try withTemporaryDirectory { dir in
            #expect {
                try SegmentedWAL(configuration: testConfiguration(dir, engine: .ioUring))
            } throws: { error in
                guard case WALError.engineUnavailable(let engine, let reason) = error else { return false }
                return engine == "io_uring" && reason.contains("ENOSYS")
            }
        }
    }

    @Test(.enabled(if: ioUringAvailable, "needs io_uring"))
    func forcedEnginesAreTheOnesUsed() throws {
        try withTemporaryDirectory { dir in
            let ring = try SegmentedWAL(configuration: testConfiguration(dir + "/a", engine: .ioUring))
            let posix = try SegmentedWAL(configuration: testConfiguration(dir + "/b", engine: .posix))
            #expect(ring.engine == .ioUring)
            #expect(posix.engine == .posix)
        }
    }

    /// One format: the same appends and syncs give byte-identical segment files whatever the
    /// engine, with O_DIRECT on or off, with one flush in flight or several (io_uring: the syncs
    /// then are requests the flusher's pipeline serves, several in flight).
    @Test func theSameWorkloadGivesByteIdenticalFilesOnEveryEngine() throws {
        try withTemporaryDirectory { dir in
            var variants: [String] = []
            var setups: [(IOEngineChoice, DirectIOPolicy, IOUringSyncMethod, Int)] = []
            for engine in availableEngines {
                for directIO in [DirectIOPolicy.required, .disabled] {
                    for method in engine == .ioUring ? IOUringSyncMethod.allCases : [.adaptive] {
                        setups.append((engine, directIO, method, 1))
                    }
                    setups.append((engine, directIO, .adaptive, 4))
                }
            }
            for (engine, directIO, method, flushes) in setups {
                do {
                    let path = dir + "/\(engine.rawValue)-\(directIO.rawValue)-\(method.rawValue)-\(flushes)"
                    variants.append(path)
                    var configuration = testConfiguration(path, engine: engine, segmentTargetSize: 300_000, directIO: directIO)
                    configuration.ioUringSyncMethod = method
                    configuration.flushesInFlight = flushes
                    let wal = try SegmentedWAL(configuration: configuration)
                    var rng = SplitMix64(seed: 11)
                    for i in 0..<600 {
                        let size = i % 50 == 0 ? Int.random(in: 100_000...1_500_000, using: &rng) : Int.random(in: 0...3000, using: &rng)
                        try wal.append(i % 2 == 0 ? .put : .delete, tenant: UInt32(i), payload: randomPayload(count: size, using: &rng))
                        if Int.random(in: 0..<5, using: &rng) == 0 {
                            if flushes > 1 && i % 3 != 0 { try wal.requestDurability(upTo: wal.nextLSN - 1) } else { try wal.sync() }
                        }
                    }
                    try wal.close()
                }
            }
            let reference = try segmentPaths(variants[0])
            #expect(reference.count > 3)
            for variant in variants.dropFirst() {
                let paths = try segmentPaths(variant)
                #expect(paths.map(FilePaths.lastComponent) == reference.map(FilePaths.lastComponent), "\(variant)")
                for (a, b) in zip(reference, paths) {
                    #expect(try fileBytes(a) == fileBytes(b), "\(b)")
                }
            }
        }
    }
}
