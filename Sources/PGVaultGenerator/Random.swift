import Mixing

extension Synth {
    /// The generator's randomness: SplitMix64, seeded per (seed, stream, index), so
    /// any row can be regenerated on its own (a reaction pass recomputes the message
    /// it belongs to) and the data does not depend on how work is split between
    /// threads. Only integer arithmetic and IEEE basic operations are used (no libm),
    /// so the same seed gives the same bytes on every platform.
    struct Rng {
        private var state: UInt64

        /// Independent streams: one per table or purpose.
        enum Stream: UInt64 {
            case world = 1, memberships, channelLayout, roleLayout, dms
            case userRows, serverRows, channelRows, roles, overwrites, memberRows, memberRoles, invites
            case messageCore, messageBody, reactions, attachments, auditLogs
        }

        init(seed: UInt64, _ stream: Stream, _ index: Int = 0) {
            let a = SplitMix64.mix(seed ^ (stream.rawValue &* 0xD1B5_4A32_D192_ED03))
            state = SplitMix64.mix(a ^ SplitMix64.mix(UInt64(truncatingIfNeeded: index) &+ 0x632B_E59B_D9B4_E019))
        }

        mutating func next() -> UInt64 {
            state &+= SplitMix64.golden
            return SplitMix64.finalize(state)
        }

        /// Uniform in [0, 1).
        mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

        /// Uniform in [0, n); n > 0.
        mutating func int(_ n: Int) -> Int {
            Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
        }

        mutating func int(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + int(range.count)
        }

        mutating func int64(_ range: ClosedRange<Int64>) -> Int64 {
            range.lowerBound + Int64(int(Int(range.upperBound - range.lowerBound) + 1))
        }

        mutating func chance(_ p: Double) -> Bool { unit() < p }

        mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }

        /// Zipf-like (exponent 1) index in [0, n): index 0 is the most likely, and the
        /// first k indices together get about log(k+1)/log(n+1) of the draws.
        mutating func zipf(_ n: Int) -> Int {
            guard n > 1 else { return 0 }
            let x = DMath.exp(unit() * DMath.log(Double(n) + 1)) - 1
            return min(n - 1, max(0, Int(x)))
        }

        /// Mostly Zipf, with `uniformShare` of the draws uniform, so the tail is not empty.
        mutating func skewed(_ n: Int, uniformShare: Double = 0.15) -> Int {
            chance(uniformShare) ? int(max(n, 1)) : zipf(n)
        }

        /// 0, 1, 2, ... with the given mean (geometric), at most `cap`.
        mutating func geometric(mean: Double, cap: Int = 1000) -> Int {
            let p = mean / (1 + mean)
            var n = 0
            while n < cap && chance(p) { n += 1 }
            return n
        }
    }

    /// exp and log from basic IEEE operations only (correctly rounded everywhere),
    /// accurate to ~1e-14: enough for sampling, and identical on every platform.
    enum DMath {
        static let ln2 = 0.693_147_180_559_945_3

        static func log(_ x: Double) -> Double {
            precondition(x > 0 && x.isFinite)
            // x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
            var e = Int(x.exponent)
            var m = x.significand  // [1, 2)
            if m > 1.414_213_562_373_095 {
                m /= 2
                e += 1
            }
            // log(m) = 2 atanh(z), z = (m-1)/(m+1), |z| < 0.172.
            let z = (m - 1) / (m + 1)
            let z2 = z * z
            var term = z
            var sum = 0.0
            var k = 1.0
            for _ in 0..<12 {
                sum += term / k
                term *= z2
                k += 2
            }
            return Double(e) * ln2 + 2 * sum
        }

        static func exp(_ x: Double) -> Double {
            if x < -700 { return 0 }
            precondition(x < 700)
            // x = k ln2 + r, |r| <= ln2/2.
            let k = (x / ln2).rounded()
            let r = x - k * ln2
            var term = 1.0
            var sum = 1.0
            for i in 1...16 {
                term *= r / Double(i)
                sum += term
            }
            return sum * Double(sign: .plus, exponent: Int(k), significand: 1)
        }
    }
}
