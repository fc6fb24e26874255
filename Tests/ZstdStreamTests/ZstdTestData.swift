import TestSupport
/// Deterministic test data (SplitMix64), so failures reproduce.
struct TestBytes {
    private var rng: SplitMix

    init(seed: UInt64) { rng = SplitMix(seed: seed) }

    mutating func next() -> UInt64 { rng.next() }

    /// Incompressible bytes.
    mutating func random(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    /// Text-like bytes: random words from a small vocabulary.
    mutating func words(_ count: Int) -> [UInt8] {
        let vocabulary = ["backup", "vault", "postgres", "table", "row", "wal", "segment", "zstd", "tar", "chunk", "\n"]
        var out: [UInt8] = []
        out.reserveCapacity(count + 16)
        while out.count < count {
            out.append(contentsOf: vocabulary[Int(next() % UInt64(vocabulary.count))].utf8)
            out.append(0x20)
        }
        return Array(out.prefix(count))
    }

    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var gen = TestBytes(seed: seed)
        return gen.random(count)
    }

    static func words(_ count: Int, seed: UInt64) -> [UInt8] {
        var gen = TestBytes(seed: seed)
        return gen.words(count)
    }
}

/// Feeds `data` to `body` in slices of `chunk` bytes.
func inChunks(_ data: [UInt8], of chunk: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    try data.withUnsafeBytes { all in
        var offset = 0
        while offset < all.count {
            let end = min(offset + chunk, all.count)
            try body(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
            offset = end
        }
    }
}
