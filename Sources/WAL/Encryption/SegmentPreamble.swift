/// The 16 plaintext bytes that start every segment written with encryption:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `WALP` |
/// | 4 | 2 | version, u16 little-endian = 1 |
/// | 6 | 1 | cipher: 0 = AES-256-GCM |
/// | 7 | 1 | key id |
/// | 8 | 4 | nonce epoch |
/// | 12 | 4 | reserved, zero |
///
/// Segments without it (unencrypted ones, or the seed's) start with a record at offset 0: a
/// record starts with `WNYS`, so the two can never be confused.
struct SegmentPreamble: Equatable, Sendable {
    static let size = 16
    static let magic: [UInt8] = Array("WALP".utf8)
    static let version: UInt16 = 1
    static let aes256GCM: UInt8 = 0

    var keyID: UInt8
    var epoch: [UInt8]

    init(keyID: UInt8, epoch: [UInt8]) {
        precondition(epoch.count == 4)
        self.keyID = keyID
        self.epoch = epoch
    }

    /// A preamble with a fresh random epoch.
    static func fresh(keyID: UInt8) -> SegmentPreamble {
        var generator = SystemRandomNumberGenerator()
        return SegmentPreamble(keyID: keyID, epoch: (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Whether `bytes` (at least 4) start with the preamble magic.
    static func starts(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == magic[0] && bytes[1] == magic[1] && bytes[2] == magic[2] && bytes[3] == magic[3]
    }

    /// Parses a preamble; the reason it is unusable otherwise.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<SegmentPreamble, PreambleProblem> {
        guard bytes.count >= size, starts(bytes) else { return .failure(.truncated) }
        let version = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
        guard version == Self.version else { return .failure(.unsupportedVersion(version)) }
        guard bytes[6] == aes256GCM else { return .failure(.unknownCipher(bytes[6])) }
        guard bytes[12] == 0, bytes[13] == 0, bytes[14] == 0, bytes[15] == 0 else { return .failure(.reservedNotZero) }
        return .success(SegmentPreamble(keyID: bytes[7], epoch: Array(bytes[8..<12])))
    }

    enum PreambleProblem: Error, CustomStringConvertible {
        case truncated, unsupportedVersion(UInt16), unknownCipher(UInt8), reservedNotZero
        var description: String {
            switch self {
            case .truncated: return "truncated segment preamble"
            case .unsupportedVersion(let version): return "segment preamble version \(version) is not supported"
            case .unknownCipher(let cipher): return "unknown cipher \(cipher) in segment preamble"
            case .reservedNotZero: return "segment preamble has non-zero reserved bytes"
            }
        }
    }

    var encoded: [UInt8] {
        Self.magic + [UInt8(Self.version & 0xFF), UInt8(Self.version >> 8), Self.aes256GCM, keyID] + epoch + [0, 0, 0, 0]
    }
}
