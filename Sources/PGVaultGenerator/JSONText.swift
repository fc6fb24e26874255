extension Synth {
    /// JSON built as bytes (for the jsonb columns); escaped once more for COPY
    /// when it is written as a field.
    struct JSONText {
        var bytes: [UInt8] = []

        init() { bytes.reserveCapacity(1024) }

        mutating func clear() { bytes.removeAll(keepingCapacity: true) }

        /// Structural text written as is: `{"type":`, `,`, `]`.
        mutating func raw(_ text: StaticString) {
            text.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }

        mutating func int(_ value: Int64) { bytes.appendDecimalText(value) }

        mutating func bool(_ value: Bool) { value ? raw("true") : raw("false") }

        /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`,
        /// `\r`, `\b`, `\f` or `\u00XX`; everything else (UTF-8) as it is.
        mutating func string(_ text: [UInt8]) {
            bytes.append(0x22)
            for c in text {
                switch c {
                case 0x22: bytes.append(0x5C); bytes.append(0x22)
                case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
                case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
                case 0x0D: bytes.append(0x5C); bytes.append(0x72)
                case 0x09: bytes.append(0x5C); bytes.append(0x74)
                case 0x08: bytes.append(0x5C); bytes.append(0x62)
                case 0x0C: bytes.append(0x5C); bytes.append(0x66)
                case 0..<0x20:
                    raw("\\u00")
                    bytes.append(hexDigits[Int(c >> 4)])
                    bytes.append(hexDigits[Int(c & 0x0F)])
                default: bytes.append(c)
                }
            }
            bytes.append(0x22)
        }

        mutating func string(_ text: StaticString) {
            text.withUTF8Buffer { string(Array($0)) }
        }

        /// A number as a JSON string (Discord sends snowflakes as strings).
        mutating func quotedInt(_ value: Int64) {
            bytes.append(0x22)
            bytes.appendDecimalText(value)
            bytes.append(0x22)
        }
    }
}
