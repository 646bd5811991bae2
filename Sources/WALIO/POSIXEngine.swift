import WALFormat

/// The fallback engine: one pwrite (continued after short writes) and, when the request asks
/// for durability, one fdatasync. Every request completes before ``submit(_:)`` returns, so
/// ``complete()`` has nothing to wait for.
final class POSIXEngine: IOEngine {
    var kind: IOEngineKind { .posix }

    init() {}

    func submit(_ request: WriteRequest) throws(WALError) {
        let file = request.file
        if !request.bytes.isEmpty {
            AlignedBuffer.assertAligned(request.bytes, offset: request.offset, direct: file.isDirect)
            try Syscall.pwriteAll(file.descriptor, request.bytes, offset: request.offset, path: file.path, direct: file.isDirect)
        }
        if request.durability != .none {
            try Syscall.fdatasync(file.descriptor, path: file.path)
        }
    }

    func complete() throws(WALError) {}

    func shutdown() {}
}
