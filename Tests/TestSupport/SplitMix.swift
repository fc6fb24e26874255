/// A deterministic PRNG (SplitMix64) for test data and mutations: the same
/// seed gives the same sequence, so a failure reproduces.
public struct SplitMix: Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform-ish in [0, upper); 0 when upper ≤ 0.
    public mutating func int(_ upper: Int) -> Int { upper <= 0 ? 0 : Int(next() % UInt64(upper)) }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
}
