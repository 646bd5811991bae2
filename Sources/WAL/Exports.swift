// The library is one target per layer (docs/ARCHITECTURE.md); `import WAL` brings them all.
@_exported import WALFormat
@_exported import WALIO
@_exported import WALEncryption
@_exported import WALSegments
@_exported import WALReplay
@_exported import WALCommit
