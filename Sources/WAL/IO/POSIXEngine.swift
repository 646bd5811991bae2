/// The fallback engine: one pwrite (continued after short writes) and one fdatasync per flush.
/// Every call completes before it returns, so ``complete()`` has nothing to wait for.
final class POSIXEngine: IOEngine {
    var kind: IOEngineKind { .posix }

    init() {}

    func submitWrite(_ bytes: UnsafeRawBufferPointer, at offset: Int64, to file: SegmentFile, sync: Bool) throws(WALError) {
        try Syscall.pwriteAll(file.descriptor, bytes, offset: offset, path: file.path)
        if sync { try Syscall.fdatasync(file.descriptor, path: file.path) }
    }

    func complete() throws(WALError) {}

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, from file: SegmentFile) throws(WALError) -> Int {
        try Syscall.preadFull(file.descriptor, buffer, offset: offset, path: file.path, direct: file.isDirect)
    }

    func shutdown() {}
}
