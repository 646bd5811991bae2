import ArgumentParser
import WAL

/// `--key-file PATH[:ID]` (repeatable) and `--seed-epoch HEX`: the key ring a reading command
/// decrypts and authenticates with. The first key is the current one; ID defaults to 1.
struct KeyOptions: ParsableArguments {
    @Option(name: .customLong("key-file"),
            help: "A 32-byte key file, as PATH or PATH:ID (repeat for several keys; ID defaults to 1). Encrypted records are then decrypted and authenticated.")
    var keyFiles: [String] = []

    @Option(name: .customLong("seed-epoch"),
            help: "Hex nonce epoch for logs written by the seed (nodedb-wal), whose segments carry no preamble.")
    var seedEpoch: String?

    func keyRing() throws -> KeyRing? {
        guard !keyFiles.isEmpty else {
            if seedEpoch != nil { throw ValidationError("--seed-epoch needs --key-file") }
            return nil
        }
        var keys: [EncryptionKey] = []
        for spec in keyFiles {
            var path = Substring(spec)
            var id: UInt8 = 1
            if let colon = spec.lastIndex(of: ":"), let parsed = UInt8(spec[spec.index(after: colon)...]) {
                path = spec[..<colon]
                id = parsed
            }
            keys.append(try EncryptionKey(id: id, contentsOfFile: String(path)))
        }
        var epoch: [UInt8]?
        if let seedEpoch {
            guard seedEpoch.count % 2 == 0, let bytes = hexBytes(seedEpoch) else {
                throw ValidationError("--seed-epoch must be hex digits")
            }
            epoch = bytes
        }
        return KeyRing(current: keys[0], previous: Array(keys.dropFirst()), seedEpoch: epoch)
    }
}

func hexBytes(_ text: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) ?? text.endIndex
        guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}

func hex(_ bytes: some Collection<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
