/// The sizes a ``Chunker`` aims for, and the masks that follow from them.
///
/// FastCDC with normalized chunking: no cut is looked for before
/// `minimumSize`; from there to `averageSize` a cut needs `log2(average) +
/// normalization` zero bits of the fingerprint (a cut is rare), after it
/// `log2(average) - normalization` bits (a cut is likely); at `maximumSize` the
/// chunk is cut whatever the content. Level 2 narrows the spread of sizes
/// around the average without hurting deduplication (Xia et al., FastCDC,
/// USENIX ATC 2016).
public struct ChunkerParameters: Sendable, Equatable, CustomStringConvertible {
    public let minimumSize: Int
    public let averageSize: Int
    public let maximumSize: Int
    public let normalization: Int
    public let gear: GearTable

    /// Largest chunk allowed: a chunker holds one in memory, and the repository
    /// compresses and encrypts each chunk as a whole.
    public static let largestMaximumSize = 64 << 20

    /// The repository's default, chosen by measurement (docs/chunking.md).
    public static let standard = try! ChunkerParameters(averageSize: 1 << 20)

    /// `minimumSize` and `maximumSize` default to a quarter and four times the average.
    public init(
        minimumSize: Int? = nil, averageSize: Int, maximumSize: Int? = nil,
        normalization: Int = 2, gear: GearTable = GearTable()
    ) throws(PGVaultError) {
        let minimumSize = minimumSize ?? averageSize / 4
        let maximumSize = maximumSize ?? averageSize * 4
        guard averageSize >= 256, averageSize <= ChunkerParameters.largestMaximumSize,
            averageSize & (averageSize - 1) == 0
        else {
            throw PGVaultError.usage(
                "average chunk size \(averageSize) is not a power of two between 256 and \(ChunkerParameters.largestMaximumSize); use one such as \(1 << 20)")
        }
        guard minimumSize >= 64, minimumSize < averageSize else {
            throw PGVaultError.usage(
                "minimum chunk size \(minimumSize) must be at least 64 and below the average \(averageSize); use \(averageSize / 4)")
        }
        guard maximumSize > averageSize, maximumSize <= ChunkerParameters.largestMaximumSize else {
            throw PGVaultError.usage(
                "maximum chunk size \(maximumSize) must be above the average \(averageSize) and at most \(ChunkerParameters.largestMaximumSize); use \(averageSize * 4)")
        }
        let bits = averageSize.trailingZeroBitCount
        guard (0...3).contains(normalization), bits - normalization >= 4 else {
            throw PGVaultError.usage("normalization level \(normalization) must be 0 to 3; use 2")
        }
        self.minimumSize = minimumSize
        self.averageSize = averageSize
        self.maximumSize = maximumSize
        self.normalization = normalization
        self.gear = gear
    }

    /// Checked before `averageSize`: the top `log2(average) + normalization` bits.
    /// The top bits, because after `fp << 1` bit 63 depends on the last 64
    /// bytes and bit 0 on the last one only.
    var strictMask: UInt64 { Self.topBits(averageSize.trailingZeroBitCount + normalization) }
    /// Checked from `averageSize` on: the top `log2(average) - normalization` bits.
    var looseMask: UInt64 { Self.topBits(averageSize.trailingZeroBitCount - normalization) }

    private static func topBits(_ count: Int) -> UInt64 { ~UInt64(0) << UInt64(64 - count) }

    public var description: String {
        "FastCDC min \(minimumSize) avg \(averageSize) max \(maximumSize) NC\(normalization) gear seed 0x\(String(gear.seed, radix: 16))"
    }
}
