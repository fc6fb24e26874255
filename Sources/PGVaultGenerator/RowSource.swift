extension Synth {
    /// Produces one table's rows in COPY text format, a few at a time, so a table is
    /// streamed and never held in memory.
    protocol RowSource {
        /// `COPY` target and column list (generated columns are left out).
        var table: String { get }
        var columns: [String] { get }
        /// Appends the rows of the next unit of work (possibly none); returns false,
        /// having appended nothing, once the source is exhausted.
        mutating func emit(into out: inout CopyBuffer) -> Bool
    }

    /// Small shared pieces of row text.
    enum Bits {
        static let base62: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)
        static let base64: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

        static func random(_ rng: inout Rng, _ alphabet: [UInt8], count: Int, into out: inout [UInt8]) {
            for _ in 0..<count { out.append(alphabet[rng.int(alphabet.count)]) }
        }

        static func hex(_ rng: inout Rng, count: Int, into out: inout [UInt8]) {
            random(&rng, hexDigits, count: count, into: &out)
        }

        /// `https://cdn.example.com/<kind>/<id>/<32 hex>.<ext>`.
        static func cdnURL(_ rng: inout Rng, kind: StaticString, id: Int64, ext: StaticString = "png") -> [UInt8] {
            var out: [UInt8] = []
            out.appendStatic("https://cdn.example.com/")
            out.appendStatic(kind)
            out.append(0x2F)
            out.appendDecimalText(id)
            out.append(0x2F)
            hex(&rng, count: 32, into: &out)
            out.append(0x2E)
            out.appendStatic(ext)
            return out
        }

        /// Percent-encodes everything but RFC 3986 unreserved characters.
        static func percentEncoded(_ raw: [UInt8], into out: inout [UInt8]) {
            for c in raw {
                switch c {
                case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: out.append(c)
                default:
                    out.append(0x25)
                    out.append(upperHex[Int(c >> 4)])
                    out.append(upperHex[Int(c & 0x0F)])
                }
            }
        }

        static func capitalized(_ word: String) -> [UInt8] {
            var bytes = Array(word.utf8)
            if let first = bytes.first, (0x61...0x7A).contains(first) { bytes[0] = first - 0x20 }
            return bytes
        }

        /// A delay after an event: usually minutes to hours, sometimes months.
        static func delay(_ rng: inout Rng, maxDays: Int = 120) -> Int64 {
            let unit = rng.unit()
            let seconds = Int64(DMath.exp(unit * DMath.log(Double(maxDays) * 86_400)))
            return seconds * Timeline.second + Int64(rng.int(1_000_000))
        }
    }
}

extension Synth.RowSource {
    var copySQL: String {
        "COPY \(table) (\(columns.joined(separator: ", "))) FROM STDIN"
    }
}
