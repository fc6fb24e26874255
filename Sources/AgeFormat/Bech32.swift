/// Bech32 (BIP-173) as age uses it: the checksum and alphabet of BIP-173,
/// without its 90-character limit (age's keys are longer in some types).
/// A string is all lowercase or all uppercase; the checksum is always over
/// the lowercase form.
enum Bech32 {
    private static let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (value, c) in alphabet.enumerated() { table[Int(c)] = Int8(value) }
        return table
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var checksum: UInt32 = 1
        for v in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> i) & 1 == 1 { checksum ^= generator[i] }
        }
        return checksum
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// `hrp` (lowercase ASCII) and `data` in lowercase Bech32.
    static func encode(hrp: String, data: [UInt8]) -> String {
        let prefix = Array(hrp.lowercased().utf8)
        let groups = regroup(data, from: 8, to: 5, pad: true) ?? []
        let mod = polymod(expand(prefix) + groups + [0, 0, 0, 0, 0, 0]) ^ 1
        let checksum = (0..<6).map { UInt8((mod >> (5 * (5 - $0))) & 31) }
        return String(decoding: prefix + [UInt8(ascii: "1")] + (groups + checksum).map { alphabet[Int($0)] }, as: UTF8.self)
    }

    /// The lowercase human-readable part and the data of `text`, or why not.
    static func decode(_ text: String) -> Result<(hrp: String, data: [UInt8]), Bech32Failure> {
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy({ (33...126).contains($0) }) else { return .failure(.invalidCharacter) }
        let hasLower = bytes.contains { (97...122).contains($0) }
        let hasUpper = bytes.contains { (65...90).contains($0) }
        guard !(hasLower && hasUpper) else { return .failure(.mixedCase) }
        let lower = bytes.map { (65...90).contains($0) ? $0 + 32 : $0 }
        guard let separator = lower.lastIndex(of: UInt8(ascii: "1")), separator >= 1, lower.count - separator - 1 >= 6 else {
            return .failure(.missingSeparator)
        }
        let hrp = Array(lower[..<separator])
        var groups: [UInt8] = []
        for c in lower[(separator + 1)...] {
            let v = values[Int(c)]
            guard v >= 0 else { return .failure(.invalidCharacter) }
            groups.append(UInt8(v))
        }
        guard polymod(expand(hrp) + groups) == 1 else { return .failure(.badChecksum) }
        guard let data = regroup(Array(groups.dropLast(6)), from: 5, to: 8, pad: false) else { return .failure(.badPadding) }
        return .success((String(decoding: hrp, as: UTF8.self), data))
    }

    /// Regroups bits (BIP-173's convertbits). Without `pad`, leftover bits
    /// must be fewer than `from` and all zero, or the encoding is not canonical.
    private static func regroup(_ input: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator = 0
        var bits = 0
        var out: [UInt8] = []
        let mask = (1 << to) - 1
        for value in input {
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> bits) & mask))
            }
            accumulator &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << (to - bits)) & mask)) }
        } else if bits >= from || (accumulator << (to - bits)) & mask != 0 {
            return nil
        }
        return out
    }
}

enum Bech32Failure: Error, CustomStringConvertible {
    case invalidCharacter, mixedCase, missingSeparator, badChecksum, badPadding

    var description: String {
        switch self {
        case .invalidCharacter: "it has a character outside Bech32's alphabet"
        case .mixedCase: "it mixes uppercase and lowercase letters"
        case .missingSeparator: "it has no '1' separator followed by at least 6 characters"
        case .badChecksum: "its checksum does not match (a character is mistyped or missing)"
        case .badPadding: "its data part does not end on a byte boundary"
        }
    }
}
