/// SplitMix64 (Steele, Lea, Flood): the generator's random streams and the
/// row digest's second sum both use its mixing function (and the tests'
/// deterministic data, through TestSupport's `SplitMix`).
public enum SplitMix64 {
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The output function: a bijective scramble of 64 bits.
    @inline(__always)
    public static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// One step from `value`: the golden-ratio increment, then ``finalize(_:)``.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 { finalize(value &+ golden) }
}
