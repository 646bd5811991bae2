import ArgumentParser
import WAL

// The library's option enums parse from their raw values; `--help` lists every value.
extension IOEngineChoice: ExpressibleByArgument {}
extension DirectIOPolicy: ExpressibleByArgument {}
extension IOUringSyncMethod: ExpressibleByArgument {}
extension SegmentPreallocation: ExpressibleByArgument {}
extension OpenVerification: ExpressibleByArgument {}
