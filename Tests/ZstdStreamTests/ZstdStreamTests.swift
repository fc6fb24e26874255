import Testing
import ZstdStream

@Suite("ZstdStream")
struct ZstdStreamTests {
    /// Compresses with `chunk`-sized input slices and returns the stream.
    private func compress(_ data: [UInt8], chunk: Int, level: Int32 = 3) throws -> [UInt8] {
        let compressor = try ZstdCompressor(level: level)
        var out: [UInt8] = []
        try inChunks(data, of: chunk) { slice in
            try compressor.compress(slice) { out.append(contentsOf: $0) }
        }
        try compressor.finish { out.append(contentsOf: $0) }
        #expect(compressor.bytesIn == UInt64(data.count))
        #expect(compressor.bytesOut == UInt64(out.count))
        return out
    }

    /// Decompresses with `chunk`-sized input slices, then calls `finish()`.
    private func decompress(_ data: [UInt8], chunk: Int, maxOutputBytes: UInt64? = nil) throws -> [UInt8] {
        let decompressor = try ZstdDecompressor(maxOutputBytes: maxOutputBytes)
        var out: [UInt8] = []
        try inChunks(data, of: chunk) { slice in
            try decompressor.decompress(slice) { out.append(contentsOf: $0) }
        }
        try decompressor.finish()
        #expect(decompressor.bytesIn == UInt64(data.count))
        #expect(decompressor.bytesOut == UInt64(out.count))
        return out
    }

    private func expectError(_ kind: ZstdError.Kind, _ body: () throws -> Void) {
        let error = #expect(throws: ZstdError.self) { try body() }
        #expect(error?.kind == kind, "got \(error.map(String.init(describing:)) ?? "no error")")
    }

    @Test func emptyInputRoundTrips() throws {
        let frame = try ZstdCompressor.compress(bytes: [])
        #expect(!frame.isEmpty, "an empty input still makes a frame")
        #expect(try ZstdDecompressor.decompress(bytes: frame) == [])
    }

    @Test func smallInputRoundTrips() throws {
        let data = Array("hello, pgvault".utf8)
        #expect(try ZstdDecompressor.decompress(bytes: ZstdCompressor.compress(bytes: data)) == data)
    }

    @Test(arguments: [1, 7, 1 << 20])
    func multiMegabyteRoundTripInOddChunks(chunk: Int) throws {
        var gen = TestBytes(seed: UInt64(chunk))
        // 1-byte chunks make a million calls each way; keep that case smaller.
        let part = chunk == 1 ? 600_000 : 1_500_000
        let data = gen.random(part) + gen.words(part) + [UInt8](repeating: 0, count: part)
        let compressed = try compress(data, chunk: chunk)
        #expect(compressed.count < data.count)
        #expect(try decompress(compressed, chunk: chunk) == data)
    }

    /// Output sizes that are exact multiples of the decoder's 128 KiB output
    /// buffer: the last call fills it exactly, and the flush attempt after it
    /// must not be mistaken for the start of a new (incomplete) frame.
    @Test(arguments: [1, 2, 5])
    func outputEndingExactlyOnTheBufferBoundary(blocks: Int) throws {
        let data = TestBytes.words(blocks * 128 * 1024, seed: UInt64(blocks))
        let compressed = try ZstdCompressor.compress(bytes: data)
        #expect(try decompress(compressed, chunk: compressed.count) == data)
        #expect(try decompress(compressed + compressed, chunk: 1000) == data + data)
    }

    @Test func concatenatedFramesDecodeAsOneStream() throws {
        var gen = TestBytes(seed: 1)
        let a = gen.words(100_000), b = gen.random(50_000), c = gen.words(10)
        // Separately made frames, concatenated.
        let joined = try ZstdCompressor.compress(bytes: a) + ZstdCompressor.compress(bytes: b)
        #expect(try decompress(joined, chunk: 999) == a + b)

        // One compressor writing several frames with finish() between them.
        let compressor = try ZstdCompressor()
        var stream: [UInt8] = []
        for part in [a, b, c] {
            try compressor.compress(part) { stream.append(contentsOf: $0) }
            try compressor.finish { stream.append(contentsOf: $0) }
        }
        #expect(try decompress(stream, chunk: 4096) == a + b + c)
    }

    @Test func resetAbandonsTheFrameInProgress() throws {
        let compressor = try ZstdCompressor()
        var discarded: [UInt8] = []
        try compressor.compress(TestBytes.random(300_000, seed: 2)) { discarded.append(contentsOf: $0) }
        try compressor.reset()
        var stream: [UInt8] = []
        try compressor.compress(Array("fresh".utf8)) { stream.append(contentsOf: $0) }
        try compressor.finish { stream.append(contentsOf: $0) }
        #expect(try ZstdDecompressor.decompress(bytes: stream) == Array("fresh".utf8))
    }

    @Test func truncatedStreamFailsAtFinish() throws {
        let data = TestBytes.words(200_000, seed: 3)
        let frame = try ZstdCompressor.compress(bytes: data)
        for cut in [1, 4, frame.count / 2, frame.count - 1] {
            expectError(.truncated) { _ = try decompress(Array(frame.prefix(cut)), chunk: 1000) }
        }
        // Two whole frames and a third cut short.
        let stream = frame + frame + frame.prefix(frame.count - 3)
        let error = #expect(throws: ZstdError.self) { _ = try decompress(stream, chunk: 65_536) }
        #expect(error?.kind == .truncated)
        #expect(error?.description.contains("truncated zstd stream (frame incomplete)") == true)
    }

    @Test func emptyInputIsNotAStream() throws {
        expectError(.emptyInput) { _ = try decompress([], chunk: 1) }
    }

    @Test func corruptedChecksumIsDetected() throws {
        var frame = try ZstdCompressor.compress(bytes: TestBytes.words(100_000, seed: 4), checksum: true)
        frame[frame.count - 1] ^= 0x01 // the last 4 bytes are the content checksum
        let error = #expect(throws: ZstdError.self) { _ = try decompress(frame, chunk: 8192) }
        #expect(error?.kind == .checksumMismatch)
        #expect(error?.libraryMessage?.isEmpty == false)
    }

    @Test func flippedDataByteIsDetected() throws {
        let data = TestBytes.words(100_000, seed: 5)
        var frame = try ZstdCompressor.compress(bytes: data, checksum: true)
        frame[frame.count / 2] ^= 0x40
        // Depending on where the flip lands zstd reports corruption or a checksum mismatch;
        // either way it must not decode "successfully" into different bytes.
        #expect(throws: ZstdError.self) { _ = try decompress(frame, chunk: 8192) }
    }

    @Test func garbageIsRejectedAndPoisonsUntilReset() throws {
        let decompressor = try ZstdDecompressor()
        let garbage = Array("this is definitely not zstd".utf8)
        let error = #expect(throws: ZstdError.self) { try decompressor.decompress(garbage) { _ in } }
        #expect(error?.kind == .library)
        #expect(error?.libraryMessage?.isEmpty == false)
        expectError(.unusable) { try decompressor.decompress(garbage) { _ in } }

        try decompressor.reset()
        var out: [UInt8] = []
        try decompressor.decompress(ZstdCompressor.compress(bytes: [1, 2, 3])) { out.append(contentsOf: $0) }
        try decompressor.finish()
        #expect(out == [1, 2, 3])
    }

    @Test func outputLimitStopsDecompressionBombs() throws {
        let bomb = try ZstdCompressor.compress(bytes: [UInt8](repeating: 0, count: 8 << 20), level: 19)
        #expect(bomb.count < 4096)
        let error = #expect(throws: ZstdError.self) { _ = try decompress(bomb, chunk: 1024, maxOutputBytes: 1 << 20) }
        #expect(error?.kind == .outputLimitExceeded(limit: 1 << 20))
        #expect(error?.description.contains("decompressed size exceeds limit 1048576 — possible decompression bomb") == true)
        // Exactly at the limit is fine.
        #expect(try decompress(bomb, chunk: 1024, maxOutputBytes: 8 << 20).count == 8 << 20)
    }

    @Test func hugeWindowRequestIsRefused() throws {
        // Hand-made frame header: magic, descriptor 0 (no content size, no checksum),
        // window descriptor exponent 20 (window 2^30), then an empty last raw block.
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 20 << 3, 0x01, 0x00, 0x00]
        let error = #expect(throws: ZstdError.self) { _ = try decompress(frame, chunk: 64) }
        #expect(error?.kind == .windowTooLarge)
        #expect(error?.description.contains("window limit 2^27") == true)
        #expect(error?.description.contains("ZSTD_d_windowLogMax") == true)
    }

    @Test func higherLevelCompressesSmaller() throws {
        let data = TestBytes.words(2_000_000, seed: 6)
        let fast = try ZstdCompressor.compress(bytes: data, level: 1)
        let strong = try ZstdCompressor.compress(bytes: data, level: 19)
        #expect(strong.count < fast.count)
    }

    @Test func invalidLevelIsRejected() throws {
        let error = #expect(throws: ZstdError.self) { _ = try ZstdCompressor(level: 1000) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.description.contains("1000") == true)
    }

    @Test func workerThreadsRoundTrip() throws {
        let data = TestBytes.words(3_000_000, seed: 7)
        let compressor = try ZstdCompressor(level: 3, workers: 2)
        var out: [UInt8] = []
        try compressor.compress(data) { out.append(contentsOf: $0) }
        try compressor.finish { out.append(contentsOf: $0) }
        #expect(try ZstdDecompressor.decompress(bytes: out) == data)
    }

    @Test func sinkErrorsPropagate() throws {
        struct Stop: Error {}
        let frame = try ZstdCompressor.compress(bytes: TestBytes.random(10_000, seed: 8))
        let decompressor = try ZstdDecompressor()
        #expect(throws: Stop.self) { try decompressor.decompress(frame) { _ in throw Stop() } }
    }

    /// 200 MB of zeros through compressor → decompressor → counting sink, with
    /// one reused input chunk: nothing may accumulate, and every chunk handed
    /// to a sink is at most one fixed-size buffer.
    @Test func streamingMemoryIsBounded() throws {
        let compressor = try ZstdCompressor(level: 1)
        let decompressor = try ZstdDecompressor()
        let input = [UInt8](repeating: 0, count: 1 << 20)
        var largestChunk = 0
        var decoded: UInt64 = 0
        let count: (UnsafeRawBufferPointer) -> Void = { chunk in
            largestChunk = max(largestChunk, chunk.count)
            decoded += UInt64(chunk.count)
        }
        let forward: (UnsafeRawBufferPointer) throws -> Void = { chunk in
            largestChunk = max(largestChunk, chunk.count)
            try decompressor.decompress(chunk, sink: count)
        }
        let total = 200 << 20
        for _ in 0..<(total / input.count) {
            try compressor.compress(input, sink: forward)
        }
        try compressor.finish(sink: forward)
        try decompressor.finish()
        #expect(decoded == UInt64(total))
        #expect(compressor.bytesIn == UInt64(total))
        #expect(compressor.bytesOut == decompressor.bytesIn)
        #expect(largestChunk <= 256 << 10, "sinks saw a \(largestChunk)-byte chunk")
    }
}
