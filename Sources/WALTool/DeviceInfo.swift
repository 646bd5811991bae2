import Foundation
import Glibc

/// The block device a directory lives on, as `/sys/block` describes it: so that a benchmark
/// result from someone else's machine says what disk it measured.
struct DeviceInfo: Encodable {
    /// The kernel's name for the whole disk (`nvme0n1`, `vda`, `sda`).
    var name: String
    /// The model (`device/model`), where the driver reports one (NVMe, SCSI; not virtio).
    var model: String?
    /// `queue/logical_block_size`: the smallest write the device accepts.
    var logicalBlockSize: Int?
    /// `queue/write_cache`: "write back" (a volatile cache: only a flush makes writes durable)
    /// or "write through".
    var writeCache: String?

    /// The device holding `path`; nil where sysfs does not say (not a block device, no sysfs).
    static func of(path: String) -> DeviceInfo? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        let device = UInt64(status.st_dev)
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~0xFFF)
        let minor = (device & 0xFF) | ((device >> 12) & ~0xFF)
        var directory = URL(fileURLWithPath: "/sys/dev/block/\(major):\(minor)").resolvingSymlinksInPath()
        // A partition's attributes are its disk's: go up to the disk.
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("partition").path) {
            directory.deleteLastPathComponent()
        }
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("queue").path) else { return nil }
        func read(_ name: String) -> String? {
            (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return DeviceInfo(name: directory.lastPathComponent, model: read("device/model"),
                          logicalBlockSize: read("queue/logical_block_size").flatMap { Int($0) },
                          writeCache: read("queue/write_cache"))
    }

    var summary: String {
        [name, model, logicalBlockSize.map { "\($0) B blocks" }, writeCache.map { "cache \($0)" }]
            .compactMap { $0 }.joined(separator: ", ")
    }
}

/// CPU time this process has used so far (user + system), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
