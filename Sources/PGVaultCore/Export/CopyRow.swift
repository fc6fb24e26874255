#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// COPY's text format, as `COPY ... TO STDOUT` writes it: fields separated by
/// tabs, `\N` for NULL, and backslash escapes in the values (`\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, `\v`; on input also octal `\NNN`, hex `\xHH`, and a
/// backslash before any other character standing for that character).
enum CopyText {
    /// The byte an escape sequence starting at `at` (a backslash) stands for,
    /// and how many bytes of `field` it takes.
    static func escape(in field: UnsafeRawBufferPointer, at: Int) -> (byte: UInt8, length: Int) {
        guard at + 1 < field.count else { return (0x5C, 1) }  // a trailing backslash: itself
        let c = field[at + 1]
        switch c {
        case UInt8(ascii: "b"): return (0x08, 2)
        case UInt8(ascii: "f"): return (0x0C, 2)
        case UInt8(ascii: "n"): return (0x0A, 2)
        case UInt8(ascii: "r"): return (0x0D, 2)
        case UInt8(ascii: "t"): return (0x09, 2)
        case UInt8(ascii: "v"): return (0x0B, 2)
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
            var value = UInt32(c - UInt8(ascii: "0")), length = 2
            while length < 4, at + length < field.count,
                  case let d = field[at + length], d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") {
                value = value << 3 | UInt32(d - UInt8(ascii: "0"))
                length += 1
            }
            return (UInt8(truncatingIfNeeded: value), length)
        case UInt8(ascii: "x"):
            var value: UInt32 = 0, length = 2
            while length < 4, at + length < field.count, let d = hexValue(field[at + length]) {
                value = value << 4 | d
                length += 1
            }
            return length == 2 ? (c, 2) : (UInt8(truncatingIfNeeded: value), length)
        default: return (c, 2)
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// The value of a field, unescaped.
    static func unescaped(_ field: UnsafeRawBufferPointer) -> [UInt8] {
        guard field.contains(0x5C) else { return Array(field) }
        var out: [UInt8] = []
        out.reserveCapacity(field.count)
        var i = 0
        while i < field.count {
            if field[i] == 0x5C {
                let (byte, length) = escape(in: field, at: i)
                out.append(byte)
                i += length
            } else {
                out.append(field[i])
                i += 1
            }
        }
        return out
    }
}

/// The rows of `COPY ... TO STDOUT` in text format, one at a time, split into
/// their fields without copying them: a loaded row is valid only while the
/// buffer COPY handed over is. The columns are read by the statement's
/// ``SelectColumns``, as the export's JSON needs them (`JSONBuffer`).
struct CopyRow<Column: SelectColumns> {
    let columns = Column.count
    private var data = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Start and end offset of each field.
    private var bounds: [(Int, Int)] = []

    init() {
        bounds.reserveCapacity(columns)
    }

    /// Splits the next row (one COPY data message, ending in a line feed).
    mutating func load(_ row: UnsafeRawBufferPointer) throws {
        var end = row.count
        if end > 0, row[end - 1] == 0x0A { end -= 1 }
        data = UnsafeRawBufferPointer(rebasing: row[0..<end])
        bounds.removeAll(keepingCapacity: true)
        guard let base = data.baseAddress else { throw Self.shape(0, columns) }
        var start = 0
        while let tab = memchr(base + start, 0x09, data.count - start) {
            let at = base.distance(to: UnsafeRawPointer(tab))
            bounds.append((start, at))
            start = at + 1
        }
        bounds.append((start, data.count))
        guard bounds.count == columns else { throw Self.shape(bounds.count, columns) }
    }

    private static func shape(_ found: Int, _ expected: Int) -> PGVaultError {
        exportDataError("a COPY row from the database has \(found) fields, expected \(expected)")
    }

    /// The field's text as COPY wrote it (escaped), or nil for NULL.
    @inline(__always)
    subscript(_ column: Column) -> UnsafeRawBufferPointer? {
        let (start, end) = bounds[column.rawValue]
        if end - start == 2, data[start] == 0x5C, data[start + 1] == UInt8(ascii: "N") { return nil }
        return UnsafeRawBufferPointer(rebasing: data[start..<end])
    }

    func isNull(_ column: Column) -> Bool { self[column] == nil }

    /// The field's value unescaped, as text (nil for NULL).
    func text(_ column: Column) -> String? {
        self[column].map { String(decoding: CopyText.unescaped($0), as: UTF8.self) }
    }

    // MARK: Fields as JSON values (see ExportJSON's constructors of the same names)

    /// Text or an id as a JSON string, or null.
    func string(_ column: Column, _ out: inout JSONBuffer) {
        if let field = self[column] { out.appendCopyString(field) } else { out.append("null") }
    }

    /// An integer column as a JSON number, or null.
    func integer(_ column: Column, _ out: inout JSONBuffer) {
        if let field = self[column] { out.append(field) } else { out.append("null") }
    }

    /// A boolean column, or null.
    func boolean(_ column: Column, _ out: inout JSONBuffer) {
        guard let field = self[column] else { return out.append("null") }
        let yes = (field.count == 1 && field[0] == UInt8(ascii: "t")) || field.elementsEqual("true".utf8)
        out.append(yes ? "true" : "false")
    }

    /// A timestamptz as an ISO-8601 string, or null.
    func time(_ column: Column, _ out: inout JSONBuffer) {
        if let field = self[column] { out.appendTime(field) } else { out.append("null") }
    }

    /// A json/jsonb column, parsed (field order and number text kept), or null.
    func json(_ column: Column) throws -> ExportJSON {
        guard let field = self[column] else { return .null }
        return try ExportJSONParser.parse(bytes: CopyText.unescaped(field))
    }

    /// A json/jsonb column pretty-printed at `indent` (as `json(_:)` then
    /// `ExportJSON.write` would write it), or null.
    func reformattedJSON(_ column: Column, indent: Int, _ out: inout JSONBuffer) throws {
        guard let field = self[column] else { return out.append("null") }
        if field.elementsEqual("[]".utf8) { return out.append("[]") }
        try ExportJSONParser.reformat(bytes: CopyText.unescaped(field), indent: indent, into: &out)
    }

    /// A bigint[] (`{1,2,3}`) as an array of id strings; NULL as `[]`.
    func idArray(_ column: Column, indent: Int, _ out: inout JSONBuffer) {
        var array = JSONContainer.array(indent: indent)
        func elements(_ value: UnsafeRawBufferPointer) {
            guard value.count > 2 else { return }
            for element in value[1..<(value.count - 1)].split(separator: 0x2C) {
                array.next(&out)
                out.appendString(UnsafeRawBufferPointer(rebasing: element))
            }
        }
        if let field = self[column] {
            if field.contains(0x5C) {
                CopyText.unescaped(field).withUnsafeBytes { elements($0) }
            } else {
                elements(field)
            }
        }
        array.end(&out)
    }
}
