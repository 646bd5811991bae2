import Foundation
import Testing
@testable import WAL

/// The `wal` tool explains itself: `--version`, completion scripts, and error messages that
/// say what to do next (the lock holder's pid, both segments of an LSN gap, the key id wanted).
@Suite("wal command-line tool: version, completions, hints")
struct CLIHintTests {
    @Test("wal --version prints the version; --generate-completion-script prints a script for each shell")
    func versionAndCompletions() throws {
        let version = try runProduct("wal", ["--version"])
        #expect(version.status == 0)
        #expect(version.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3,
                "not a version: \(version.output)")
        for (shell, marker) in [("bash", "complete -"), ("zsh", "#compdef wal"), ("fish", "complete -c 'wal'")] {
            let script = try runProduct("wal", ["--generate-completion-script", shell])
            #expect(script.status == 0, "\(shell): \(script.errors)")
            #expect(script.output.contains(marker), "\(shell) script without \(marker)")
            #expect(script.output.contains("truncate") && script.output.contains("verify"), "\(shell): subcommands missing")
        }
    }

    @Test("A locked directory: the error names the pid holding the lock and what still works")
    func lockedDirectoryNamesTheHolder() throws {
        try withTemporaryDirectory { dir in
            try VectorTests.copy("multi-segment", to: dir)
            let wal = try SegmentedWAL(configuration: testConfiguration(dir))
            defer { try? wal.close() }
            let result = try runProduct("wal", ["truncate", dir, "--before", "26"])
            #expect(result.status != 0)
            #expect(result.errors.contains("in use by another writer"), "\(result.errors)")
            #expect(result.errors.contains("held by pid \(getpid())"), "\(result.errors)")
            #expect(result.errors.contains("`wal dump`"), "\(result.errors)")
            #expect(result.errors.split(separator: "\n").count == 1, "\(result.errors)")
        }
    }

    @Test("An LSN gap: the error names the segments on both sides and the missing LSNs")
    func lsnGapNamesBothSegments() throws {
        let directory = VectorTests.root + "/lsn-gap"
        let result = try runProduct("wal", ["dump", directory])
        #expect(result.status != 0)
        #expect(result.errors.contains("between wal-00000000000000000001.seg (its records end at LSN 5) and wal-00000000000000000007.seg (which starts at LSN 7)"),
                "\(result.errors)")
        #expect(result.errors.contains("`wal verify \(directory)`"), "\(result.errors)")
        let verify = try runProduct("wal", ["verify", directory, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(verify.output.utf8)) as? [String: Any])
        let problems = try #require(report["problems"] as? [[String: Any]])
        let hint = try #require(problems.first?["hint"] as? String)
        #expect(hint.contains("wal-00000000000000000001.seg") && hint.contains("wal-00000000000000000007.seg"), "\(hint)")
        #expect(!hint.contains("wal verify"), "wal verify need not advise running itself: \(hint)")
    }

    @Test("A missing key: the error names the key id the segment wants and how to pass it")
    func missingKeyNamesTheKeyID() throws {
        try withTemporaryDirectory { dir in
            var configuration = testConfiguration(dir + "/wal")
            configuration.encryption = KeyRing(current: EncryptionKey.random(id: 3))
            let wal = try SegmentedWAL(configuration: configuration)
            try wal.commit(.put, payload: [1, 2, 3])
            try wal.close()
            let otherKey = dir + "/other.key"
            try writeFile(otherKey, [UInt8](repeating: 9, count: 32))
            let result = try runProduct("wal", ["dump", dir + "/wal", "--key-file", otherKey + ":1"])
            #expect(result.status != 0)
            #expect(result.errors.contains("encrypted with key id 3"), "\(result.errors)")
            #expect(result.errors.contains("needs the key with id 3: add `--key-file PATH:3`"), "\(result.errors)")
        }
    }
}
