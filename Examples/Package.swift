// swift-tools-version:6.1
// Two small programs built on swift-wal, for newcomers to run and read. Not part of the
// library package: build them with `swift build --package-path Examples`.
import PackageDescription

let package = Package(
    name: "swift-wal-examples",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-wal", path: ".."),
    ],
    targets: [
        // A key-value store whose every change is a WAL record; it rebuilds its map on start.
        .executableTarget(
            name: "kv-store",
            dependencies: [.product(name: "WAL", package: "swift-wal")]
        ),
        // Prints the records of a WAL directory that another process writes, as they arrive.
        .executableTarget(
            name: "change-feed",
            dependencies: [.product(name: "WAL", package: "swift-wal")]
        ),
    ]
)
