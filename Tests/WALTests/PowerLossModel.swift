import Foundation
import Synchronization
@testable import WAL

/// What a power cut could leave on disk, rebuilt from the WAL's own system calls.
///
/// SIGKILL keeps the page cache, so it never loses an unsynced write; this model does. It
/// follows every change the WAL makes (``SyscallEvent``) and, at a cut, materialises a copy
/// of the directory holding:
/// - for each file, the bytes made durable by its last fsync/fdatasync, then each later write
///   independently kept whole, torn at a random 512-byte sector boundary, or dropped (devices
///   and the page cache write back in any order);
/// - the directory entries made durable by the last directory fsync, then a random prefix of
///   the later creations, renames and unlinks (file systems journal metadata in order), so a
///   file created or renamed but not yet fsynced in its directory may be missing or under its
///   old name.
/// fallocate is not modelled (a file is only as long as its written bytes), which is one of
/// the states a crash can produce; io_uring's writes bypass the syscall layer, so the model
/// runs the POSIX engine (both engines produce the same bytes at the same points).
final class PowerLossModel: Sendable {
    private enum Operation {
        case write(offset: Int64, bytes: [UInt8])
        case truncate(length: Int64)
    }

    private struct File {
        var durable: [UInt8] = []
        var pending: [Operation] = []
    }

    private enum EntryChange {
        case create(name: String, file: Int)
        case rename(from: String, to: String)
        case unlink(name: String)
    }

    private struct State {
        var files: [File] = []
        var names: [String: Int] = [:]          // current directory entries → file
        var durableNames: [String: Int] = [:]   // entries as of the last directory fsync
        var pendingEntries: [EntryChange] = []
        var events = 0
    }

    private let state = Mutex(State())

    /// Applies one event from ``Syscall/observer``; `afterEach` runs with the event count,
    /// inside the model's lock (so a cut taken there sees a consistent state).
    func record(_ event: SyscallEvent) {
        state.withLock { state in
            state.events += 1
            switch event {
            case .create(let path):
                guard state.names[path] == nil else { return }
                state.files.append(File())
                state.names[path] = state.files.count - 1
                state.pendingEntries.append(.create(name: path, file: state.files.count - 1))
            case .write(let path, let offset, let bytes):
                guard let file = state.names[path] else { return }
                state.files[file].pending.append(.write(offset: offset, bytes: bytes))
            case .truncate(let path, let length):
                guard let file = state.names[path] else { return }
                state.files[file].pending.append(.truncate(length: length))
            case .allocate:
                break  // not modelled here (see CrashStateModel)
            case .sync(let path):
                guard let file = state.names[path] else { return }
                for operation in state.files[file].pending { Self.apply(operation, to: &state.files[file].durable) }
                state.files[file].pending.removeAll()
            case .rename(let from, let to):
                guard let file = state.names.removeValue(forKey: from) else { return }
                state.names[to] = file
                state.pendingEntries.append(.rename(from: from, to: to))
            case .unlink(let path):
                guard state.names.removeValue(forKey: path) != nil else { return }
                state.pendingEntries.append(.unlink(name: path))
            case .syncDirectory:
                state.durableNames = state.names
                state.pendingEntries.removeAll()
            }
        }
    }

    /// The number of events recorded so far.
    var events: Int { state.withLock { $0.events } }

    /// Writes what a power cut now could leave into `target` (a fresh directory): file names
    /// are those under `source`, rewritten to `target`. `acknowledged` is read in the same
    /// critical section, so it holds exactly the commits that returned before the cut.
    func cut<R: RandomNumberGenerator, A>(source: String, target: String, using rng: inout R,
                                          acknowledged: () -> A) throws -> A {
        let (entries, contents, snapshot) = state.withLock { state -> ([String: Int], [Int: [UInt8]], A) in
            var entries = state.durableNames
            let kept = Int.random(in: 0...state.pendingEntries.count, using: &rng)
            for change in state.pendingEntries.prefix(kept) {
                switch change {
                case .create(let name, let file): entries[name] = file
                case .rename(let from, let to): if let file = entries.removeValue(forKey: from) { entries[to] = file }
                case .unlink(let name): entries.removeValue(forKey: name)
                }
            }
            var contents: [Int: [UInt8]] = [:]
            for file in Set(entries.values) {
                var bytes = state.files[file].durable
                for operation in state.files[file].pending {
                    switch (operation, Int.random(in: 0..<3, using: &rng)) {
                    case (_, 0): continue  // never reached the disk
                    case (.write(let offset, let data), 1):
                        let sectors = Int.random(in: 0...(data.count / 512), using: &rng)
                        Self.apply(.write(offset: offset, bytes: Array(data.prefix(sectors * 512))), to: &bytes)
                    default:
                        Self.apply(operation, to: &bytes)
                    }
                }
                contents[file] = bytes
            }
            return (entries, contents, acknowledged())
        }
        for (name, file) in entries where name.hasPrefix(source + "/") {
            let path = target + name.dropFirst(source.count)
            try Data(contents[file]!).write(to: URL(fileURLWithPath: path))
        }
        return snapshot
    }

    private static func apply(_ operation: Operation, to bytes: inout [UInt8]) {
        switch operation {
        case .write(let offset, let data):
            let end = Int(offset) + data.count
            if bytes.count < end { bytes.append(contentsOf: repeatElement(0, count: end - bytes.count)) }
            bytes.replaceSubrange(Int(offset)..<end, with: data)
        case .truncate(let length):
            if bytes.count > Int(length) {
                bytes.removeSubrange(Int(length)...)
            } else {
                bytes.append(contentsOf: repeatElement(0, count: Int(length) - bytes.count))
            }
        }
    }
}
