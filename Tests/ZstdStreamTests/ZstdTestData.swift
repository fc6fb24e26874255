/// Deterministic test data (SplitMix64), so failures reproduce.
struct TestBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

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
