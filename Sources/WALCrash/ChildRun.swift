import Foundation

/// One child process: started with its standard output on a pipe, read while it runs, killed
/// with SIGKILL after a delay, then read to the end (lines written before the kill are still in
/// the pipe).
struct ChildRun {
    var lines: [String] = []
    var ready = false
    var killed = false
    var status: Int32 = 0
    var errorOutput = ""

    static func start(arguments: [String], killAfterMilliseconds delay: Int) throws -> ChildRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()

        var run = ChildRun()
        var pending: [UInt8] = []
        let fd = output.fileHandleForReading.fileDescriptor
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(delay) * 1_000_000
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        func drain(timeoutMilliseconds: Int32) -> Bool {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, timeoutMilliseconds) > 0 else { return true }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return false }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line == "ready" { run.ready = true }
                run.lines.append(line)
            }
            return true
        }
        var open = true
        while open, DispatchTime.now().uptimeNanoseconds < deadline {
            let left = Int32((deadline - min(deadline, DispatchTime.now().uptimeNanoseconds)) / 1_000_000)
            open = drain(timeoutMilliseconds: max(left, 1))
        }
        kill(process.processIdentifier, SIGKILL)
        while drain(timeoutMilliseconds: 5_000) {}
        process.waitUntilExit()
        run.killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        run.status = process.terminationStatus
        run.errorOutput = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return run
    }
}
