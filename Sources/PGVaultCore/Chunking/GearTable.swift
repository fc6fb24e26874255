import Mixing

/// FastCDC's gear table: one pseudo-random 64-bit value per byte value, which
/// the rolling fingerprint adds in (`fp = fp << 1 + gear[byte]`).
///
/// The table is part of the repository format: another table puts the
/// boundaries elsewhere, and nothing stored before deduplicates against what
/// is stored after. So it is generated, not written down: entry `i` is the
/// `i+1`-th output of SplitMix64 started at `seed`, which a reader can rebuild
/// in a few lines of any language (docs/chunking.md). A repository may derive
/// `seed` from its secret, as restic keys its Rabin polynomial per repository,
/// so that chunk sizes do not fingerprint known content for someone without it.
public struct GearTable: Sendable, Equatable {
    /// The seed of the default table: the ASCII bytes of "pgvault1".
    public static let defaultSeed: UInt64 = 0x7067_7661_756C_7431

    public let seed: UInt64
    public let entries: [UInt64]

    public init(seed: UInt64 = GearTable.defaultSeed) {
        self.seed = seed
        var state = seed
        var entries = [UInt64]()
        entries.reserveCapacity(256)
        for _ in 0..<256 {
            state &+= SplitMix64.golden
            entries.append(SplitMix64.finalize(state))
        }
        self.entries = entries
    }
}
