// swift-tools-version:6.1
// The package-benchmark suite (ordo-one/benchmark), kept in a package of its own so that the
// root package's `swift test` neither builds nor resolves it. Run: scripts/bench-micro.
import PackageDescription

let package = Package(
    name: "swift-wal-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-wal", path: ".."),
        // Only the malloc interposer: the default RuntimeInterposer trait pulls a package this
        // toolchain's mirror does not carry, and malloc counts are what the suite gates on.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "WALBenchmarks",
            dependencies: [
                .product(name: "WAL", package: "swift-wal"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/WALBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
