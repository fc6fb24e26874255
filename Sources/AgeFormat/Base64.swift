/// Standard base64 without padding, as age's header uses it (RFC 4648 §4).
/// Decoding is strict: padding, characters outside the alphabet and
/// non-canonical encodings (nonzero unused bits) are refused, as the spec
/// requires, so one header has exactly one encoding and the MAC covers it.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (value, c) in alphabet.enumerated() { table[Int(c)] = Int8(value) }
        return table
    }()

    static func isAlphabet(_ c: UInt8) -> Bool { values[Int(c)] >= 0 }

    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var group = UInt32(bytes[i]) << 16
            if n > 1 { group |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { group |= UInt32(bytes[i + 2]) }
            for k in 0...n { out.append(alphabet[Int((group >> (18 - 6 * UInt32(k))) & 63)]) }
            i += 3
        }
        return out
    }

    static func decode<C: Collection<UInt8>>(_ text: C) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text {
            let v = values[Int(c)]
            guard v >= 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xff))
            }
        }
        // The bits left over must be zero, or another string encodes the same bytes.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
