import Mixing

/// An order-independent digest of a multiset of rows.
///
/// Each row (its COPY text without the newline, or its binary COPY tuple; see
/// ``CopyRowReader`` and ``RowSplitter``) is hashed with XXH64; the
/// digest is the row count with two 64-bit sums of per-row values (the hash, and
/// a SplitMix64 finalisation of it), so the same rows in any order give the
/// same digest, and a changed, missing or extra row changes it with probability
/// 1 − 2⁻⁶⁴. A backup computes it while streaming; a verification computes it
/// again from `COPY ... TO STDOUT` of the restored table, under the same session
/// settings (``CopySession``), and compares.
public struct RowDigest: Sendable, Equatable, CustomStringConvertible {
    public private(set) var rows: Int64 = 0
    private var sumA: UInt64 = 0
    private var sumB: UInt64 = 0

    public init() {}

    /// Adds one row, exactly as given (no newline: a binary tuple may end in 0x0A).
    @inline(__always)
    public mutating func add(row: UnsafeRawBufferPointer) {
        let h = XXH64.hash(row, seed: 0)
        rows &+= 1
        sumA &+= h
        sumB &+= SplitMix64.mix(h)
    }

    /// Combines two digests of disjoint row sets (e.g. the ctid-range units of one table).
    public mutating func merge(_ other: RowDigest) {
        rows &+= other.rows
        sumA &+= other.sumA
        sumB &+= other.sumB
    }

    /// `<sumA><sumB>` as 32 hex digits (the row count is kept separately).
    public var hex: String { Self.hex64(sumA) + Self.hex64(sumB) }

    public var description: String { "\(rows) rows, digest \(hex)" }

    /// Parses ``hex`` back (for merging digests read from a manifest).
    public init?(hex: String, rows: Int64) {
        guard hex.utf8.count == 32, let a = UInt64(hex.prefix(16), radix: 16),
              let b = UInt64(hex.suffix(16), radix: 16) else { return nil }
        self.rows = rows
        sumA = a
        sumB = b
    }

    static func hex64(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// XXH64 (Yann Collet's xxHash, 64-bit), written from its specification.
public enum XXH64 {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        (acc ^ round(0, val)) &* p1 &+ p4
    }

    public static func hash(_ data: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let n = data.count
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while i + 32 <= n {
                v1 = round(v1, data.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
                v2 = round(v2, data.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, data.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, data.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self).littleEndian)
                i += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1)
            h = merge(h, v2)
            h = merge(h, v3)
            h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        h &+= UInt64(n)
        while i + 8 <= n {
            h ^= round(0, data.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
            h = rotl(h, 27) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h ^= UInt64(data.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h ^= UInt64(data[i]) &* p5
            h = rotl(h, 11) &* p1
            i += 1
        }
        h ^= h >> 33
        h &*= p2
        h ^= h >> 29
        h &*= p3
        h ^= h >> 32
        return h
    }
}
