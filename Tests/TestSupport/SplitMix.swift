import Mixing

/// A deterministic PRNG (SplitMix64) for test data and mutations: the same
/// seed gives the same sequence, so a failure reproduces.
public struct SplitMix: Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= SplitMix64.golden
        return SplitMix64.finalize(state)
    }

    /// Uniform-ish in [0, upper); 0 when upper ≤ 0.
    public mutating func int(_ upper: Int) -> Int { upper <= 0 ? 0 : Int(next() % UInt64(upper)) }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
}
