import WALFormat

/// The fallback engine: one pwrite (continued after short writes) and, when the request asks
/// for durability, one fdatasync (``WriteForm/posix(_:isEmpty:)``). It keeps one request in
/// flight; the WAL drives it through ``SerialFlights``.
final class POSIXEngine: IOEngine {
    var kind: IOEngineKind { .posix }

    init() {}

    func form(of durability: WriteDurability, isEmpty: Bool) -> WriteForm {
        .posix(durability, isEmpty: isEmpty)
    }

    func write(_ request: WriteRequest) throws(WALError) {
        let file = request.file
        let form = form(of: request.durability, isEmpty: request.bytes.isEmpty)
        if form.write != .nothing {
            AlignedBuffer.assertAligned(request.bytes, offset: request.offset, direct: file.isDirect)
            try Syscall.pwriteAll(file.descriptor, request.bytes, offset: request.offset, path: file.path, direct: file.isDirect)
        }
        if form.fdatasync {
            try Syscall.fdatasync(file.descriptor, path: file.path)
        }
    }

    func shutdown() {}
}
