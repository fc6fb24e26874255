extension Synth {
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Rows in COPY text format, appended as bytes. Fields are separated by tabs
    /// (added automatically before every field but the first of a row), rows end in
    /// a newline, NULL is `\N`, and text fields are escaped: backslash, newline,
    /// carriage return and tab become `\\`, `\n`, `\r`, `\t`. So a value holding the
    /// two characters `\N` is written `\\N` and stays text, and a line `\.` inside a
    /// value cannot end the COPY.
    struct CopyBuffer {
        private(set) var bytes: [UInt8] = []
        private(set) var rows: Int64 = 0
        private var fields = 0
        /// Checked at the end of each row in debug builds.
        var expectedFields = 0

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func clear() { bytes.removeAll(keepingCapacity: true) }

        @inline(__always) private mutating func separate() {
            if fields > 0 { bytes.append(0x09) }
            fields += 1
        }

        mutating func endRow() {
            assert(expectedFields == 0 || fields == expectedFields, "row has \(fields) fields, expected \(expectedFields)")
            bytes.append(0x0A)
            fields = 0
            rows += 1
        }

        mutating func null() {
            separate()
            bytes.append(0x5C)
            bytes.append(0x4E)
        }

        mutating func int<I: BinaryInteger>(_ value: I) {
            separate()
            bytes.appendDecimalText(Int64(value))
        }

        mutating func int<I: BinaryInteger>(_ value: I?) {
            if let value { int(value) } else { null() }
        }

        mutating func bool(_ value: Bool) {
            separate()
            bytes.append(value ? 0x74 : 0x66)
        }

        /// Text that needs no escaping (ASCII without backslash, tab, CR or LF).
        mutating func plain(_ text: StaticString) {
            separate()
            text.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }

        /// Any text, escaped for COPY.
        mutating func text(_ raw: [UInt8]) {
            separate()
            bytes.appendCopyTextEscaped(raw)
        }

        mutating func text(_ raw: [UInt8]?) {
            if let raw { text(raw) } else { null() }
        }

        mutating func timestamp(_ micros: Int64) {
            separate()
            bytes.appendTimestampText(micros)
        }

        mutating func timestamp(_ micros: Int64?) {
            if let micros { timestamp(micros) } else { null() }
        }

        /// A random version-4 UUID.
        mutating func uuid(_ rng: inout Rng) {
            separate()
            let hi = rng.next(), lo = rng.next()
            var b = [UInt8](repeating: 0, count: 16)
            for i in 0..<8 {
                b[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i)))
                b[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i)))
            }
            b[6] = (b[6] & 0x0F) | 0x40
            b[8] = (b[8] & 0x3F) | 0x80
            for (i, byte) in b.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { bytes.append(0x2D) }
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0x0F)])
            }
        }

        /// A bigint[] literal: `{1,2,3}` (no quoting needed for numbers).
        mutating func intArray(_ values: [Int64]) {
            separate()
            bytes.append(0x7B)
            for (i, v) in values.enumerated() {
                if i > 0 { bytes.append(0x2C) }
                bytes.appendDecimalText(v)
            }
            bytes.append(0x7D)
        }

        /// A text[] literal with every element double-quoted (so `NULL`, empty
        /// strings, commas, braces and spaces stay text), `"` and `\` backslash-escaped
        /// inside the element; then the whole literal is escaped again for COPY.
        mutating func textArray(_ elements: [[UInt8]], scratch: inout [UInt8]) {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(0x7B)
            for (i, element) in elements.enumerated() {
                if i > 0 { scratch.append(0x2C) }
                scratch.append(0x22)
                for c in element {
                    if c == 0x22 || c == 0x5C { scratch.append(0x5C) }
                    scratch.append(c)
                }
                scratch.append(0x22)
            }
            scratch.append(0x7D)
            text(scratch)
        }
    }
}
