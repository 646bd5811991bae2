import WALFormat

/// What a write request becomes on the device: the write (plain, or `RWF_DSYNC`), and whether
/// an fdatasync follows it (linked) or stands alone (an empty request). One pure table, applied
/// by both engines; the writer above asks the engine (``IOEngine/form(of:isEmpty:)``) rather
/// than guessing, so "how a flush becomes durable" is decided here and nowhere else.
///
/// | request | `.adaptive` (default) | `.dsyncWrites` | `.linkedFdatasync` | POSIX |
/// |---|---|---|---|---|
/// | ``WriteDurability/none`` | write | dsync write | write | pwrite |
/// | ``WriteDurability/thisWrite`` | dsync write | dsync write | write → fdatasync | pwrite + fdatasync |
/// | ``WriteDurability/fileData`` | write → fdatasync | dsync write (every earlier write was one too) | write → fdatasync | pwrite + fdatasync |
/// | empty, ``WriteDurability/fileData`` | fdatasync | nothing (every write was durable) | fdatasync | fdatasync |
///
/// Why adaptive: io_uring hands fsync to an io-wq worker thread (two extra context switches per
/// commit), while a dsync write completes in the submitting context; but a dsync write covers
/// its own range only (with FUA it does not flush the device cache), so it cannot vouch for
/// earlier plain writes (docs/PERFORMANCE.md has the measurements).
package struct WriteForm: Equatable, Sendable, CustomStringConvertible {
    /// How the bytes go out.
    package enum Write: Equatable, Sendable {
        /// No write (an empty request).
        case nothing
        /// A plain write: the kernel has the bytes, nothing is promised about the device.
        case plain
        /// An `RWF_DSYNC` write: durable when it completes, for its own range only.
        case dsync
    }

    package let write: Write
    /// An fdatasync follows the write (or stands alone): it covers every write of the file that
    /// completed before it was issued.
    package let fdatasync: Bool

    package init(write: Write, fdatasync: Bool) {
        self.write = write
        self.fdatasync = fdatasync
    }

    /// Durable when it completes, covering its own range and nothing else: a dsync write with
    /// no fdatasync. Only such writes may share the device with other writes of disjoint blocks;
    /// any other durable form must go out alone, so that its fdatasync covers every earlier write.
    package var isSelfDurable: Bool { write == .dsync && !fdatasync }

    /// Durable when it completes (whatever it covers).
    package var isDurable: Bool { write == .dsync || fdatasync }

    /// Nothing reaches the kernel.
    package var isEmpty: Bool { write == .nothing && !fdatasync }

    package var description: String {
        switch (write, fdatasync) {
        case (.nothing, false): "nothing"
        case (.nothing, true): "fdatasync"
        case (.plain, false): "write"
        case (.plain, true): "write → fdatasync"
        case (.dsync, false): "dsync write"
        case (.dsync, true): "dsync write → fdatasync"
        }
    }

    /// The io_uring engine's form (the table's first three columns).
    package static func ioUring(_ durability: WriteDurability, isEmpty: Bool, method: IOUringSyncMethod) -> WriteForm {
        let bytes: Write = isEmpty ? .nothing : .plain
        switch (method, durability) {
        case (.dsyncWrites, _):
            // Every write is its own sync, so nothing is ever left for an fdatasync.
            return WriteForm(write: isEmpty ? .nothing : .dsync, fdatasync: false)
        case (_, .none):
            return WriteForm(write: bytes, fdatasync: false)
        case (.adaptive, .thisWrite) where !isEmpty:
            return WriteForm(write: .dsync, fdatasync: false)
        case (.adaptive, _), (.linkedFdatasync, _):
            return WriteForm(write: bytes, fdatasync: true)
        }
    }

    /// The POSIX engine's form: pwrite, then fdatasync when the request is durable.
    package static func posix(_ durability: WriteDurability, isEmpty: Bool) -> WriteForm {
        WriteForm(write: isEmpty ? .nothing : .plain, fdatasync: durability != .none)
    }
}
