import WALFormat

/// Segment file names: `wal-<first LSN as 20 zero-padded decimal digits>.seg`,
/// so that lexical order is LSN order.
enum SegmentName {
    static let prefix = "wal-"
    static let suffix = ".seg"
    static let digits = 20

    static func make(firstLSN: LSN) -> String {
        let number = String(firstLSN)
        return prefix + String(repeating: "0", count: digits - number.count) + number + suffix
    }

    /// The first LSN a name encodes, or nil when the name is not a segment's.
    static func parse(_ name: String) -> LSN? {
        let utf8 = name.utf8
        guard utf8.count == prefix.utf8.count + digits + suffix.utf8.count,
              name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let number = utf8.dropFirst(prefix.utf8.count).prefix(digits)
        guard number.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return LSN(Substring(number))
    }
}
