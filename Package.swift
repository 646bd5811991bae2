// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "swift-wal",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WAL", targets: ["WAL"]),
        // Runs a SegmentedWAL as a swift-service-lifecycle Service. A separate product, so an
        // application that depends only on WAL never builds swift-service-lifecycle.
        .library(name: "WALServiceLifecycle", targets: ["WALServiceLifecycle"]),
        .executable(name: "wal", targets: ["WALTool"]),
        .executable(name: "wal-crash", targets: ["WALCrash"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `swift package generate-documentation` (scripts/docs); a command plugin, linked into nothing.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // liburing plus the Linux constants Swift cannot import (O_DIRECT, fallocate flags, IOSQE_* flags).
        .systemLibrary(
            name: "CLiburing",
            path: "CLiburing",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        // ISA-L's hardware CRC32C (crc32_iscsi).
        .systemLibrary(
            name: "CISAL",
            path: "Sources/CISAL",
            pkgConfig: "libisal",
            providers: [.apt(["libisal-dev"])]
        ),
        // The library's layers (docs/ARCHITECTURE.md), one target each, lowest first: each
        // depends only on the layers below it, so the compiler checks the layering. The `WAL`
        // target (the facade) re-exports them all, so users see one module: `import WAL`.
        .target(
            name: "WALFormat",
            dependencies: ["CISAL"]
        ),
        .target(
            name: "WALIO",
            dependencies: [
                "WALFormat",
                "CLiburing",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [
                // Fault injection and observation hooks (WALIO/TestHooks.swift): debug builds only,
                // so release builds carry no test code on the I/O path.
                .define("WAL_TEST_HOOKS", .when(configuration: .debug)),
            ]
        ),
        .target(
            name: "WALEncryption",
            dependencies: [
                "WALFormat",
                "WALIO",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WALSegments",
            dependencies: [
                "WALFormat",
                "WALIO",
                "WALEncryption",
                "CLiburing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WALReplay",
            dependencies: [
                "WALFormat",
                "WALIO",
                "WALEncryption",
                "WALSegments",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WALCommit",
            dependencies: [
                "WALFormat",
                "WALIO",
                "WALEncryption",
                "WALSegments",
                "WALReplay",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "WAL",
            dependencies: [
                "WALFormat",
                "WALIO",
                "WALEncryption",
                "WALSegments",
                "WALReplay",
                "WALCommit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WALServiceLifecycle",
            dependencies: [
                "WAL",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "WALTool",
            dependencies: [
                "WAL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Example: Raft log storage on a SegmentedWAL (README, "Using swift-wal under Raft").
        // Not a product: copy it into your project.
        .target(name: "RaftLogStorage", dependencies: ["WAL"]),
        // The crash campaign (scripts/crash-test): a parent that SIGKILLs committing children.
        .executableTarget(
            name: "WALCrash",
            dependencies: [
                "WAL",
                "RaftLogStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "WALTests",
            dependencies: [
                "WAL",
                "WALFormat",
                "WALIO",
                "WALEncryption",
                "WALSegments",
                "WALReplay",
                "WALCommit",
                "WALCrash",
                "RaftLogStorage",
                "CISAL",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            exclude: ["Vectors", "CrateVectors"]
        ),
        .testTarget(
            name: "WALServiceLifecycleTests",
            dependencies: [
                "WALServiceLifecycle",
                "WAL",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
