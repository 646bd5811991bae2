import ArgumentParser
import Glibc
import WAL

/// `wal dump DIR`: one line per record.
struct DumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print records: LSN, type, flags, tenant, vshard, length and a hex preview of the payload.")

    @Argument(help: "The WAL directory.") var directory: String
    @Option(help: "First LSN to print.") var from: UInt64 = 1
    @Option(help: "Print at most this many records.") var limit: Int?
    @Option(help: "Only records of this type: a name (put, delete, ...) or a number (decimal or 0x hex).") var type: String?
    @Option(help: "Payload bytes shown in the preview.") var preview: Int = 16
    @OptionGroup var keys: KeyOptions
    @Flag(help: "Print one JSON object per line (with the whole payload in hex).") var json = false
    @Flag(help: "After the existing records, keep printing new ones as the writer adds them (Ctrl-C stops). Another process's durability cannot be seen: a record is printed once completely written.")
    var follow = false
    @Option(name: .customLong("poll-ms"), help: "With --follow, how often to look for new records, in milliseconds.")
    var pollMilliseconds: Int = 100

    struct Line: Encodable {
        var lsn: UInt64
        var type: String
        var typeValue: UInt16
        var required: Bool
        var encrypted: Bool
        var tenant: UInt32
        var vshard: UInt16
        var length: Int
        var payloadHex: String
    }

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
        if preview < 0 { throw ValidationError("--preview must not be negative") }
        if let type, Self.parseType(type) == nil { throw ValidationError("unknown record type \(type)") }
        if pollMilliseconds < 1 { throw ValidationError("--poll-ms must be at least 1") }
    }

    static func parseType(_ text: String) -> RecordType? {
        if let named = RecordType.named(text) { return named }
        if text.hasPrefix("0x"), let value = UInt16(text.dropFirst(2), radix: 16) { return RecordType(rawValue: value) }
        return UInt16(text).map(RecordType.init(rawValue:))
    }

    func run() async throws {
        let wanted = type.flatMap(Self.parseType)
        var types = RecordType.seedTypes
        if let wanted { types.insert(wanted) }
        let keyRing = try keys.keyRing()
        var printed = 0
        if follow {
            let stream = SegmentedWAL.records(in: directory, from: from, follow: true,
                                              pollInterval: .milliseconds(pollMilliseconds), recordTypes: types, keyRing: keyRing)
            for try await record in stream {
                if let limit, printed >= limit { break }
                if let wanted, record.type != wanted { continue }
                printed += 1
                try show(record)
                fflush(nil)  // each record as it comes, also into a pipe
            }
            return
        }
        try dumpExisting(types: types, wanted: wanted, keyRing: keyRing)
    }

    /// Without --follow: a synchronous pass over the log.
    private func dumpExisting(types: Set<RecordType>, wanted: RecordType?, keyRing: KeyRing?) throws {
        var stream = SegmentedWAL.records(in: directory, from: from, recordTypes: types, keyRing: keyRing)
        var printed = 0
        while limit.map({ printed < $0 }) ?? true, let record = try stream.next() {
            if let wanted, record.type != wanted { continue }
            printed += 1
            try show(record)
        }
    }

    private func show(_ record: WALRecord) throws {
        let line = Line(lsn: record.lsn, type: record.type.description, typeValue: record.type.rawValue,
                        required: record.type.isRequired, encrypted: record.isEncrypted, tenant: record.tenant,
                        vshard: record.vshard, length: record.payload.count,
                        payloadHex: hex(json ? record.payload[...] : record.payload.prefix(preview)))
        if json {
            try printJSONLine(line)
        } else {
            let flags = [record.type.isRequired ? "required" : nil, record.isEncrypted ? "encrypted" : nil].compactMap { $0 }
            let more = record.payload.count > preview ? "…" : ""
            print("\(line.lsn)  \(line.type)  \(flags.isEmpty ? "-" : flags.joined(separator: ","))  tenant=\(line.tenant)  vshard=\(line.vshard)  len=\(line.length)  \(line.payloadHex)\(more)")
        }
    }
}
