/// The plaintext bytes that start every segment written with encryption (ours; the seed
/// stores none):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `WALP` |
/// | 4 | 2 | version, u16 little-endian: 2 (what we write), or 1 |
/// | 6 | 1 | cipher: 0 = AES-256-GCM |
/// | 7 | 1 | key id |
/// | 8 | 4 | nonce epoch |
/// | 12 | 4 | reserved, zero |
/// | 16 | 16 | version 2 only: the segment's key salt (random) |
///
/// Version 2 encrypts the segment's records under its own key, derived from the ring's key
/// with HKDF-SHA256 and the random salt (``RecordCipher``). A GCM nonce is the 4-byte epoch
/// and the LSN; with version 1 (the key used directly) one key shared by many WAL directories
/// repeats an (epoch, LSN) pair — a reused nonce — with probability near one half after about
/// 77,000 segments (the birthday bound on 32 random bits). With a 128-bit salt per segment,
/// two segments share a key only if their salts collide, which needs ~2⁶⁴ segments. Version 1
/// segments (written before) stay readable.
///
/// Segments without it (unencrypted ones, or the seed's) start with a record at offset 0: a
/// record starts with `WNYS`, so the two can never be confused.
package struct SegmentPreamble: Equatable, Sendable {
    /// The size of the preamble we write (version 2).
    package static let size = 32
    /// The size of a version 1 preamble.
    static let version1Size = 16
    static let magic: [UInt8] = Array("WALP".utf8)
    static let version: UInt16 = 2
    static let aes256GCM: UInt8 = 0
    static let saltSize = 16

    package var keyID: UInt8
    var epoch: [UInt8]
    /// The segment key's salt; nil in a version 1 preamble (records under the ring's key).
    var salt: [UInt8]?

    init(keyID: UInt8, epoch: [UInt8], salt: [UInt8]?) {
        precondition(epoch.count == 4 && (salt == nil || salt?.count == Self.saltSize))
        self.keyID = keyID
        self.epoch = epoch
        self.salt = salt
    }

    /// Bytes this preamble occupies at the start of its segment.
    package var encodedSize: Int { salt == nil ? Self.version1Size : Self.size }

    /// A version 2 preamble with a fresh random epoch and salt.
    package static func fresh(keyID: UInt8) -> SegmentPreamble {
        var generator = SystemRandomNumberGenerator()
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        return SegmentPreamble(keyID: keyID, epoch: random(4), salt: random(saltSize))
    }

    /// Whether `bytes` (at least 4) start with the preamble magic.
    package static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == magic[0] && bytes[1] == magic[1] && bytes[2] == magic[2] && bytes[3] == magic[3]
    }

    /// Parses a preamble (version 1 or 2); the reason it is unusable otherwise.
    package static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<SegmentPreamble, PreambleProblem> {
        guard bytes.count >= version1Size, starts(bytes) else { return .failure(.truncated) }
        let version = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
        guard version == 1 || version == 2 else { return .failure(.unsupportedVersion(version)) }
        guard bytes[6] == aes256GCM else { return .failure(.unknownCipher(bytes[6])) }
        guard bytes[12] == 0, bytes[13] == 0, bytes[14] == 0, bytes[15] == 0 else { return .failure(.reservedNotZero) }
        var salt: [UInt8]?
        if version == 2 {
            guard bytes.count >= size else { return .failure(.truncated) }
            salt = Array(bytes[version1Size..<size])
        }
        return .success(SegmentPreamble(keyID: bytes[7], epoch: Array(bytes[8..<12]), salt: salt))
    }

    package enum PreambleProblem: Error, CustomStringConvertible {
        case truncated, unsupportedVersion(UInt16), unknownCipher(UInt8), reservedNotZero
        package var description: String {
            switch self {
            case .truncated: return "truncated segment preamble"
            case .unsupportedVersion(let version): return "segment preamble version \(version) is not supported"
            case .unknownCipher(let cipher): return "unknown cipher \(cipher) in segment preamble"
            case .reservedNotZero: return "segment preamble has non-zero reserved bytes"
            }
        }
    }

    package var encoded: [UInt8] {
        let version: UInt16 = salt == nil ? 1 : 2
        return Self.magic + [UInt8(version & 0xFF), UInt8(version >> 8), Self.aes256GCM, keyID] + epoch + [0, 0, 0, 0]
            + (salt ?? [])
    }
}
