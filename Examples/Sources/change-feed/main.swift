// change-feed: follows a WAL directory that another process writes and prints each record as
// it arrives: the existing ones first, then new ones, across segment rollovers.
//
//   change-feed DIR [--from LSN] [--count N]
//
// Another process's durability cannot be observed, so a record is printed once it is
// completely written (its CRC checks). In the writer's own process, use
// `wal.records(from:follow: true)` instead, which yields only durable records.
import Foundation
import WAL

func usage() -> Never {
    FileHandle.standardError.write(Data("usage: change-feed DIR [--from LSN] [--count N]\n".utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard let directory = arguments.first, !directory.hasPrefix("-") else { usage() }
arguments.removeFirst()
var from: LSN = 1
var count: Int?
while let option = arguments.first {
    guard arguments.count >= 2 else { usage() }
    switch option {
    case "--from": guard let value = LSN(arguments[1]) else { usage() }; from = value
    case "--count": guard let value = Int(arguments[1]), value > 0 else { usage() }; count = value
    default: usage()
    }
    arguments.removeFirst(2)
}
var isDirectory: ObjCBool = false
guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
    FileHandle.standardError.write(Data("change-feed: \(directory) is not a directory (start the writer first)\n".utf8))
    exit(1)
}

/// The payload as text when it is UTF-8, else as hex.
func show(_ payload: [UInt8]) -> String {
    if let text = String(validating: payload, as: UTF8.self), !text.contains(where: { $0.isNewline }) { return text }
    return payload.map { String(format: "%02x", $0) }.joined()
}

var printed = 0
do {
    // Polls the directory every 50 ms at the end of the log (the default is 100 ms).
    for try await record in SegmentedWAL.records(in: directory, from: from, follow: true, pollInterval: .milliseconds(50)) {
        print("LSN \(record.lsn)  \(record.type)  tenant=\(record.tenant)  \(show(record.payload))")
        fflush(nil)  // each record as it comes, also into a pipe or a file
        printed += 1
        if let count, printed >= count { break }
    }
} catch {
    FileHandle.standardError.write(Data("change-feed: \(error)\n".utf8))
    exit(1)
}
