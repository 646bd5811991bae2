// swift-tools-version:6.1
// libFuzzer target for the segment reader and record decoder, kept in a package of its own so
// that the root package's `swift test` neither builds it nor needs the fuzzer runtime.
// Build and run: scripts/fuzz (it passes -sanitize=fuzzer,address and -parse-as-library).
import PackageDescription

let package = Package(
    name: "swift-wal-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-wal", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "WALFuzz",
            dependencies: [.product(name: "WAL", package: "swift-wal")],
            path: "Sources/WALFuzz"
        ),
    ]
)
