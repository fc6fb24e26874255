/// The pieces of JSON's string escapes that every JSON reader in pgvault
/// shares (``LazyJSONDecoder`` for manifests, ``ExportJSONParser`` for the
/// jsonb values of an export); each decides itself how strict to be.
enum JSONEscape {
    /// The byte a one-character escape stands for (`n` in `\n`), or nil.
    static func byte(for escape: UInt8) -> UInt8? {
        switch escape {
        case UInt8(ascii: "\""): 0x22
        case UInt8(ascii: "\\"): 0x5C
        case UInt8(ascii: "/"): 0x2F
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }

    /// The value of the four hexadecimal digits of a `\u` escape starting at
    /// `at`, or nil when they are cut short or one is not hexadecimal.
    static func hex4<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, at: Bytes.Index) -> UInt32? {
        guard bytes.distance(from: at, to: bytes.endIndex) >= 4 else { return nil }
        var value: UInt32 = 0
        var k = at
        for _ in 0..<4 {
            let c = bytes[k]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
            k = bytes.index(after: k)
        }
        return value
    }
}
