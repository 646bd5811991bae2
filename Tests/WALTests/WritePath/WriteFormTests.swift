import Testing
import WALFormat
@testable import WALIO

/// ``WriteForm``: the one table that says what a request becomes on the device, per engine and
/// sync method (docs/ARCHITECTURE.md, "How a flush becomes durable").
@Suite("The write-form table")
struct WriteFormTests {
    typealias Row = (durability: WriteDurability, empty: Bool, adaptive: String, dsyncWrites: String, linked: String, posix: String)

    static let rows: [Row] = [
        (.none, false, "write", "dsync write", "write", "write"),
        (.thisWrite, false, "dsync write", "dsync write", "write → fdatasync", "write → fdatasync"),
        (.fileData, false, "write → fdatasync", "dsync write", "write → fdatasync", "write → fdatasync"),
        (.fileData, true, "fdatasync", "nothing", "fdatasync", "fdatasync"),
        (.none, true, "nothing", "nothing", "nothing", "nothing"),
    ]

    @Test("each request's form", arguments: rows.indices)
    func row(_ index: Int) {
        let row = Self.rows[index]
        #expect(WriteForm.ioUring(row.durability, isEmpty: row.empty, method: .adaptive).description == row.adaptive)
        #expect(WriteForm.ioUring(row.durability, isEmpty: row.empty, method: .dsyncWrites).description == row.dsyncWrites)
        #expect(WriteForm.ioUring(row.durability, isEmpty: row.empty, method: .linkedFdatasync).description == row.linked)
        #expect(WriteForm.posix(row.durability, isEmpty: row.empty).description == row.posix)
    }

    /// Only a dsync write with no fdatasync may share the device: a linked fdatasync (the form
    /// `.linkedFdatasync` gives every durable write) is never durable by itself, so several
    /// flights under that method are correct by construction: each goes out alone.
    @Test("which forms are durable by themselves")
    func selfDurable() {
        for method in IOUringSyncMethod.allCases {
            for durability in [WriteDurability.none, .thisWrite, .fileData] {
                let form = WriteForm.ioUring(durability, isEmpty: false, method: method)
                #expect(form.isSelfDurable == (form.write == .dsync && !form.fdatasync))
                if method == .linkedFdatasync { #expect(!form.isSelfDurable, "\(durability)") }
                if durability != .none { #expect(form.isDurable, "\(method) \(durability) must be durable") }
            }
        }
        #expect(!WriteForm.posix(.thisWrite, isEmpty: false).isSelfDurable)
    }
}
