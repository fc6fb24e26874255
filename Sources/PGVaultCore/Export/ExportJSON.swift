#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The JSON of a user export package: an ordered tree (fields keep the order
/// they are written in, so every file has the same layout from one export to
/// the next), serialized pretty-printed with two-space indentation.
///
/// Numbers are kept as their text, so nothing is rounded on the way through
/// (JSONB from the database, e.g. an audit entry's `changes`, may hold 64-bit
/// ids as numbers). Ids the export itself writes are strings (see
/// docs/export-format.md, "Conventions").
public indirect enum ExportJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A JSON number, as text (`42`, `-1.5e3`).
    case number(String)
    case string(String)
    case array([ExportJSON])
    case object([Field])

    public struct Field: Sendable, Equatable {
        public var key: String
        public var value: ExportJSON
        public init(_ key: String, _ value: ExportJSON) {
            self.key = key
            self.value = value
        }
    }

    /// An object with its fields in the order given.
    public static func object(_ fields: KeyValuePairs<String, ExportJSON>) -> ExportJSON {
        .object(fields.map { Field($0.key, $0.value) })
    }

    public static func int<I: BinaryInteger>(_ value: I) -> ExportJSON { .number(String(value)) }

    /// The value of `key` in an object (the first such field), else nil.
    public subscript(key: String) -> ExportJSON? {
        guard case let .object(fields) = self else { return nil }
        return fields.first { $0.key == key }?.value
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var arrayValue: [ExportJSON]? {
        if case let .array(a) = self { return a }
        return nil
    }
}

// MARK: - Values from PostgreSQL's text output

extension ExportJSON {
    /// An id (bigint, uuid) as a JSON string, or null.
    public static func id(_ text: String?) -> ExportJSON { text.map { .string($0) } ?? .null }

    /// Text as a JSON string, or null.
    public static func text(_ text: String?) -> ExportJSON { text.map { .string($0) } ?? .null }

    /// An integer column as a JSON number, or null.
    public static func integer(_ text: String?) -> ExportJSON { text.map { .number($0) } ?? .null }

    /// A float column; NaN and infinities (which JSON cannot hold) become null.
    public static func float(_ text: String?) -> ExportJSON {
        guard let text, Double(text)?.isFinite == true else { return .null }
        if text.first == "." || text.hasPrefix("-.") { return .number(text.replacingOccurrences(of: ".", with: "0.")) }
        return .number(text)
    }

    /// A boolean column (`t`/`f`), or null.
    public static func boolean(_ text: String?) -> ExportJSON {
        guard let text else { return .null }
        return .bool(text == "t" || text == "true")
    }

    /// A timestamptz column, read with TimeZone UTC and DateStyle ISO, as
    /// ISO-8601 UTC with microseconds (`2024-05-01T12:00:00.250000Z`), or null.
    public static func time(_ text: String?) -> ExportJSON { text.map { .string(ExportTime.iso8601($0)) } ?? .null }

    /// A bigint[] column (`{1,2,3}`) as an array of id strings.
    public static func idArray(_ text: String?) -> ExportJSON {
        guard let text, text.count > 2 else { return .array([]) }
        return .array(text.dropFirst().dropLast().split(separator: ",").map { .string(String($0)) })
    }

    /// A json/jsonb column, parsed (field order and number text kept), or null.
    public static func json(_ text: String?) throws -> ExportJSON {
        guard let text else { return .null }
        return try ExportJSONParser.parse(text)
    }
}

/// Timestamps as the export writes them.
public enum ExportTime {
    /// `2024-05-01 12:00:00.25+00` (timestamptz output with TimeZone UTC,
    /// DateStyle ISO) → `2024-05-01T12:00:00.250000Z`. `infinity`, `-infinity`
    /// and anything unexpected are passed through unchanged.
    public static func iso8601(_ text: String) -> String {
        var out = JSONBuffer(capacity: 64)
        defer { out.release() }
        var text = text
        text.withUTF8 { out.appendISO8601(UnsafeRawBufferPointer($0)) }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// Now, as ISO-8601 UTC with microseconds.
    public static func now() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var seconds = time_t(tv.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(tv.tv_usec), 6))Z"
    }
}

// MARK: - Serializing

extension ExportJSON {
    /// Pretty-printed UTF-8 text with a final newline.
    public func serialized() -> [UInt8] {
        var out = JSONBuffer(capacity: 1024)
        defer { out.release() }
        write(into: &out, indent: 0)
        out.append(UInt8(ascii: "\n"))
        return out.array
    }

    /// Appends this value as pretty-printed JSON, its nested lines indented
    /// `indent` levels (the first line is not indented: the caller placed it).
    func write(into out: inout JSONBuffer, indent: Int) {
        switch self {
        case .null: out.append("null")
        case let .bool(b): out.append(b ? "true" : "false")
        case let .number(n): out.append(n)
        case let .string(s): out.appendString(s)
        case let .array(items):
            var array = JSONContainer.array(indent: indent)
            for item in items {
                array.next(&out)
                item.write(into: &out, indent: indent + 1)
            }
            array.end(&out)
        case let .object(fields):
            var object = JSONContainer.object(indent: indent)
            for field in fields { field.write(in: &object, into: &out) }
            object.end(&out)
        }
    }

    /// Appends this value on one line, without spaces (strings escape their
    /// line breaks): `ExportJSONParser` reads it back as the same value. For
    /// values kept in a temporary file, one per line.
    func writeCompact(into out: inout JSONBuffer) {
        switch self {
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.writeCompact(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(fields):
            out.append(UInt8(ascii: "{"))
            for (i, field) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.appendString(field.key)
                out.append(UInt8(ascii: ":"))
                field.value.writeCompact(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        default:
            write(into: &out, indent: 0)
        }
    }
}

extension ExportJSON.Field {
    /// Appends `"key": value` as the next field of `object`.
    func write(in object: inout JSONContainer, into out: inout JSONBuffer) {
        object.key(escaping: key, &out)
        value.write(into: &out, indent: object.indent + 1)
    }
}

// MARK: - Parsing (JSON text from PostgreSQL)

/// Data from the database the export cannot read: a server error, since
/// the statement's answer is not what it should be.
func exportDataError(_ message: String) -> PGVaultError { PGVaultError(.server, message) }

/// A strict RFC 8259 parser for the JSON PostgreSQL hands out (json/jsonb
/// columns). Keeps field order and number text.
enum ExportJSONParser {
    static func parse(_ text: String) throws -> ExportJSON {
        try parse(bytes: Array(text.utf8))
    }

    static func parse(bytes: [UInt8]) throws -> ExportJSON {
        var parser = Cursor(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.atEnd else { throw parser.error("trailing characters") }
        return value
    }

    /// JSON text pretty-printed at `indent`: the same text as
    /// `parse(bytes:)` then `write(into:indent:)`, without building the value.
    static func reformat(bytes: [UInt8], indent: Int, into out: inout JSONBuffer) throws {
        var parser = Cursor(bytes: bytes)
        parser.skipSpace()
        try parser.reformat(depth: 0, indent: indent, into: &out)
        parser.skipSpace()
        guard parser.atEnd else { throw parser.error("trailing characters") }
    }

    private struct Cursor {
        let bytes: [UInt8]
        var i = 0

        var atEnd: Bool { i >= bytes.count }

        func error(_ what: String) -> PGVaultError {
            exportDataError("invalid JSON from the database at byte \(i): \(what)")
        }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for b in literal.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw error("expected \(literal)") }
                i += 1
            }
        }

        mutating func value(depth: Int) throws -> ExportJSON {
            guard depth < 512 else { throw error("nested too deeply") }
            guard i < bytes.count else { throw error("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var fields: [ExportJSON.Field] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(":")
                    skipSpace()
                    fields.append(.init(key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw error("unterminated object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect("}")
                    return .object(fields)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [ExportJSON] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw error("unterminated array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect("]")
                    return .array(items)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return .number(try number())
            }
        }

        /// Like `value(depth:)`, but writes the value as `ExportJSON.write` would.
        mutating func reformat(depth: Int, indent: Int, into out: inout JSONBuffer) throws {
            guard depth < 512 else { throw error("nested too deeply") }
            guard i < bytes.count else { throw error("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = bytes[i] == UInt8(ascii: "{")
                let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                var container = isObject ? JSONContainer.object(indent: indent) : JSONContainer.array(indent: indent)
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == close {
                    i += 1
                    return container.end(&out)
                }
                while true {
                    skipSpace()
                    container.next(&out)
                    if isObject {
                        try reformatString(into: &out)
                        skipSpace()
                        try expect(":")
                        out.append(": ")
                        skipSpace()
                    }
                    try reformat(depth: depth + 1, indent: indent + 1, into: &out)
                    skipSpace()
                    guard i < bytes.count else { throw error(isObject ? "unterminated object" : "unterminated array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect(isObject ? "}" : "]")
                    return container.end(&out)
                }
            case UInt8(ascii: "\""): try reformatString(into: &out)
            case UInt8(ascii: "t"): try expect("true"); out.append("true")
            case UInt8(ascii: "f"): try expect("false"); out.append("false")
            case UInt8(ascii: "n"): try expect("null"); out.append("null")
            default: out.append(try number())
            }
        }

        /// A string as `string()` then `JSONBuffer.appendString` would write
        /// it; copied as it is when it has no escapes and is valid UTF-8.
        mutating func reformatString(into out: inout JSONBuffer) throws {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected \"") }
            var end = i + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
            guard end < bytes.count, bytes[end] == UInt8(ascii: "\""), Self.isValidUTF8(bytes, i + 1, end) else {
                return out.appendString(try string())
            }
            bytes.withUnsafeBytes { out.appendString(UnsafeRawBufferPointer(rebasing: $0[(i + 1)..<end])) }
            i = end + 1
        }

        /// Whether `bytes[from..<to]` is well-formed UTF-8 (what
        /// `String(decoding:as:)` keeps without replacing anything).
        static func isValidUTF8(_ bytes: [UInt8], _ from: Int, _ to: Int) -> Bool {
            var k = from
            while k < to {
                let b = bytes[k]
                if b < 0x80 { k += 1; continue }
                let length: Int, low: UInt8, high: UInt8
                switch b {
                case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
                case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
                case 0xED: (length, low, high) = (3, 0x80, 0x9F)
                case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
                case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
                case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
                default: return false
                }
                guard k + length <= to, bytes[k + 1] >= low, bytes[k + 1] <= high else { return false }
                for j in (k + 2)..<(k + length) where bytes[j] < 0x80 || bytes[j] > 0xBF { return false }
                k += length
            }
            return true
        }

        mutating func number() throws -> String {
            let start = i
            func digits(_ c: inout Cursor) -> Int {
                let s = c.i
                while c.i < c.bytes.count, (0x30...0x39).contains(c.bytes[c.i]) { c.i += 1 }
                return c.i - s
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw error("expected a value") }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits(&self) > 0 else { throw error("expected digits after '.'") }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw error("expected exponent digits") }
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard let value = JSONEscape.hex4(bytes, at: i) else {
                throw error(i + 4 <= bytes.count ? "bad \\u escape" : "short \\u escape")
            }
            i += 4
            return value
        }

        mutating func string() throws -> String {
            try expect("\"")
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw error("unterminated string") }
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard i < bytes.count else { throw error("unterminated escape") }
                let e = bytes[i]
                i += 1
                if let byte = JSONEscape.byte(for: e) {
                    out.append(byte)
                    continue
                }
                switch e {
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar), i + 6 <= bytes.count,
                       bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            out.append(contentsOf: "\u{FFFD}".utf8)
                            scalar = low
                        }
                    }
                    out.append(contentsOf: String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
                default: throw error("bad escape")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
