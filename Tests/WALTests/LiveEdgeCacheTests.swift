import Testing
@testable import WAL
@testable import WALSegments

/// The writer's in-memory copy of the active segment's newest bytes, read by live tailers.
@Suite("Live edge cache")
struct LiveEdgeCacheTests {
    /// `count` bytes whose value depends on the file offset and a generation (so a rewrite of
    /// the same offset is told apart from the original).
    private func bytes(at offset: Int64, count: Int, generation: UInt8 = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: (Int(offset) + $0) / 7) &+ generation }
    }

    private func record(_ cache: LiveEdgeCache, segment: LSN = 1, _ bytes: [UInt8], at offset: Int64) {
        bytes.withUnsafeBytes { cache.recordWrite(segment: segment, offset: offset, bytes: $0) }
    }

    /// What a read at `offset` returns (nil: not cached), at most `count` bytes.
    private func read(_ cache: LiveEdgeCache, segment: LSN = 1, at offset: Int64, count: Int = 1 << 20) -> [UInt8]? {
        var target = [UInt8](repeating: 0xEE, count: count)
        let got = target.withUnsafeMutableBytes { cache.read(segment: segment, at: offset, into: $0) }
        return got.map { Array(target[0..<$0]) }
    }

    @Test("Nothing is kept while no tailer is registered, and the memory goes when the last one leaves")
    func onlyWhileReadersExist() {
        let cache = LiveEdgeCache(writerIsDirect: true)
        record(cache, bytes(at: 0, count: 4096), at: 0)
        #expect(read(cache, at: 0) == nil)
        cache.register()
        record(cache, bytes(at: 4096, count: 4096), at: 4096)
        #expect(read(cache, at: 4096) == bytes(at: 4096, count: 4096))
        #expect(read(cache, at: 0) == nil, "written before anyone registered: never cached")
        cache.unregister()
        record(cache, bytes(at: 8192, count: 4096), at: 8192)
        #expect(read(cache, at: 4096) == nil)
        #expect(read(cache, at: 8192) == nil)
    }

    @Test("Rewrites of the last block replace it; reads end where the written data ends")
    func rewritesAndEnd() {
        let cache = LiveEdgeCache(writerIsDirect: true)
        cache.register()
        record(cache, bytes(at: 0, count: 8192), at: 0)
        record(cache, bytes(at: 4096, count: 8192, generation: 1), at: 4096)  // the partial block again, and more
        #expect(read(cache, at: 0) == bytes(at: 0, count: 4096) + bytes(at: 4096, count: 8192, generation: 1))
        #expect(read(cache, at: 8192, count: 1000) == Array(bytes(at: 8192, count: 1000, generation: 1)), "at most the target's size")
        #expect(read(cache, at: 12288) == [], "at the end: no bytes, which a scanner reads as the live edge")
        #expect(read(cache, at: 16384) == nil, "past the end: not cached")
        #expect(cache.writtenEnd(segment: 1) == 12288)
    }

    @Test("Another segment, a gap, a write larger than the cache and invalidation all miss")
    func misses() {
        let cache = LiveEdgeCache(writerIsDirect: true)
        cache.register()
        record(cache, bytes(at: 0, count: 4096), at: 0)
        #expect(read(cache, segment: 2, at: 0) == nil)
        #expect(cache.writtenEnd(segment: 2) == nil)

        record(cache, bytes(at: 40960, count: 4096), at: 40960)  // not contiguous: starts afresh
        #expect(read(cache, at: 0) == nil)
        #expect(read(cache, at: 40960) == bytes(at: 40960, count: 4096))

        record(cache, segment: 2, bytes(at: 0, count: 4096), at: 0)  // rollover
        #expect(read(cache, at: 40960) == nil)
        #expect(read(cache, segment: 2, at: 0) == bytes(at: 0, count: 4096))

        record(cache, segment: 2, bytes(at: 4096, count: cache.capacity + 4096), at: 4096)
        #expect(read(cache, segment: 2, at: 0) == nil, "a write not kept must empty the cache: no gap papered over")
        #expect(read(cache, segment: 2, at: 4096) == nil)

        record(cache, segment: 2, bytes(at: 0, count: 4096), at: 0)
        cache.invalidate()
        #expect(read(cache, segment: 2, at: 0) == nil)
        #expect(cache.writtenEnd(segment: 2) == nil)
    }

    @Test("A full cache keeps the newest bytes, contiguous and exact")
    func keepsTheNewest() {
        let cache = LiveEdgeCache(writerIsDirect: true)
        cache.register()
        var offset: Int64 = 0
        for round in 0..<700 {  // ~2.7 MiB through a 1 MiB cache, each write rewriting the last block
            let count = 4096 * (1 + round % 3)
            record(cache, bytes(at: offset, count: count), at: offset)
            offset += Int64(count) - 4096
        }
        let end = offset + 4096
        #expect(cache.writtenEnd(segment: 1) == end)
        #expect(read(cache, at: 0) == nil, "the oldest bytes are gone")
        let from = end - Int64(cache.capacity / 2)
        #expect(read(cache, at: from) == bytes(at: from, count: cache.capacity / 2))
    }

    @Test("The cache holds at least one whole buffer write, whatever the buffer size")
    func capacityFollowsTheBufferSize() throws {
        for bufferSize in [64 << 10, 2 << 20, 4 << 20] {
            try withTemporaryDirectory { dir in
                var configuration = testConfiguration(dir)
                configuration.bufferSize = bufferSize
                let wal = try SegmentedWAL(configuration: configuration)
                #expect(wal.logWriter.liveEdge.capacity == max(LiveEdgeCache.defaultCapacity, bufferSize))
                try wal.close()
            }
        }
    }
}
