import Crypto
import Glibc
import WALFormat
import WALIO

/// A 256-bit AES-GCM key with the one-byte id that segment preambles record.
///
/// The key bytes never appear in descriptions, logs or errors.
public struct EncryptionKey: Sendable, CustomStringConvertible {
    /// Identifies the key in segment preambles, so replay knows which key a segment needs.
    public let id: UInt8
    package let key: SymmetricKey

    /// A key from exactly 32 raw bytes.
    /// - Throws: ``WALError/invalidKey(_:)`` for any other length.
    public init(id: UInt8, bytes: some Collection<UInt8>) throws(WALError) {
        guard bytes.count == 32 else {
            throw WALError.invalidKey("an AES-256 key is 32 bytes, got \(bytes.count)")
        }
        self.id = id
        self.key = SymmetricKey(data: Array(bytes))
    }

    /// A key read from a file holding exactly 32 raw bytes.
    /// - Throws: ``WALError/io(operation:errno:path:)`` when unreadable, ``WALError/invalidKey(_:)``
    ///   when the file is not exactly 32 bytes.
    public init(id: UInt8, contentsOfFile path: String) throws(WALError) {
        let fd = try Syscall.open(path, flags: O_RDONLY)
        defer { Syscall.close(fd) }
        let size = try Syscall.fileSize(fd, path: path)
        guard size == 32 else {
            throw WALError.invalidKey("key file \(path) must hold exactly 32 bytes, it holds \(size)")
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        let read = try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(WALError) -> Int in try Syscall.preadFull(fd, buffer, offset: 0, path: path) }
        }.get()
        guard read == 32 else { throw WALError.invalidKey("key file \(path) changed while being read") }
        try self.init(id: id, bytes: bytes)
        for index in bytes.indices { bytes[index] = 0 }
    }

    /// A new random key (for tests and for generating key files).
    public static func random(id: UInt8) -> EncryptionKey {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try! EncryptionKey(id: id, bytes: bytes)
    }

    /// The key id only: the key bytes are never printed.
    public var description: String { "EncryptionKey(id: \(id), 256 bits, redacted)" }
}

/// The keys a WAL encrypts and decrypts with: the current key encrypts every new segment;
/// previous keys only decrypt, so segments written before a rotation stay readable while
/// their key is in the ring.
public struct KeyRing: Sendable, CustomStringConvertible {
    /// Encrypts new segments.
    public var current: EncryptionKey
    /// Decrypt older segments, looked up by the key id in their preamble.
    public var previous: [EncryptionKey]
    /// The nonce epoch for segments without a preamble (written by the seed, which stores its
    /// epoch nowhere); such segments decrypt with the current key and this epoch.
    public var seedEpoch: [UInt8]?

    /// A ring that encrypts with `current` and decrypts segments written under any of its keys.
    ///
    /// - Parameters:
    ///   - current: The key every new segment is encrypted with.
    ///   - previous: Keys that only decrypt, for segments written before a rotation.
    ///   - seedEpoch: The nonce epoch of segments written by the seed, which carry no preamble.
    public init(current: EncryptionKey, previous: [EncryptionKey] = [], seedEpoch: [UInt8]? = nil) {
        self.current = current
        self.previous = previous
        self.seedEpoch = seedEpoch
    }

    /// The key with `id`, current first.
    public func key(id: UInt8) -> EncryptionKey? {
        current.id == id ? current : previous.first { $0.id == id }
    }

    /// The key ids, never the key bytes.
    public var description: String {
        "KeyRing(current: \(current.id), previous: \(previous.map(\.id)))"
    }
}
