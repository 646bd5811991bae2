// kv-store: a key-value store whose every change is a write-ahead log record.
//
//   kv-store [--dir DIR] put KEY VALUE | delete KEY | get KEY | list
//
// On start it rebuilds its map by replaying the log (everything the directory holds); a
// change is committed — durable — before it is applied and reported. The default directory is
// ./kv-data.
import Foundation
import WAL

/// What one record says: a put carries a value, a delete does not.
struct Change: Codable {
    var key: String
    var value: String?
}

func usage() -> Never {
    FileHandle.standardError.write(Data("usage: kv-store [--dir DIR] put KEY VALUE | delete KEY | get KEY | list\n".utf8))
    exit(2)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kv-store: \(message)\n".utf8))
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var directory = "kv-data"
if arguments.first == "--dir" {
    guard arguments.count >= 2 else { usage() }
    directory = arguments[1]
    arguments.removeFirst(2)
}
guard let command = arguments.first else { usage() }

do {
    // Opening takes the directory's lock (one writer at a time) and cuts off whatever a crash
    // left half-written after the last complete record.
    let wal = try SegmentedWAL(configuration: WALConfiguration(directory: directory))
    defer { try? wal.close() }

    // Rebuild the map: apply every record, oldest first.
    var store: [String: String] = [:]
    var replay = wal.records()
    while let record = try replay.next() {
        let change = try JSONDecoder().decode(Change.self, from: Data(record.payload))
        switch record.type {
        case .put: store[change.key] = change.value
        case .delete: store[change.key] = nil
        default: break  // a type this program does not write
        }
    }

    /// Logs a change and returns once it is durable: only then is it applied.
    func commit(_ type: RecordType, _ change: Change) throws -> LSN {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // the same bytes for the same change
        return try wal.commit(type, payload: Array(try encoder.encode(change)))
    }

    switch (command, arguments.count) {
    case ("put", 3):
        let (key, value) = (arguments[1], arguments[2])
        let lsn = try commit(.put, Change(key: key, value: value))
        store[key] = value
        print("put \(key) (LSN \(lsn))")
    case ("delete", 2):
        let key = arguments[1]
        guard store[key] != nil else { fail("no key \(key)") }
        let lsn = try commit(.delete, Change(key: key, value: nil))
        store[key] = nil
        print("deleted \(key) (LSN \(lsn))")
    case ("get", 2):
        guard let value = store[arguments[1]] else { fail("no key \(arguments[1])") }
        print(value)
    case ("list", 1):
        for key in store.keys.sorted() { print("\(key)\t\(store[key]!)") }
    default:
        usage()
    }
    try wal.close()  // makes everything durable and releases the lock; the deferred close is then a no-op
} catch let error as WALError {
    fail("\(error)")
} catch {
    fail("\(error)")
}
