/// A growable byte buffer that the export's JSON text is appended to through
/// a raw pointer, in runs (no per-byte bounds or uniqueness checks): a large
/// export writes hundreds of megabytes of JSON. Whoever creates one calls
/// `release()` when done (a `defer` right after creating it).
///
/// Every formatting rule of the package's JSON (pretty-printing, string
/// escaping, timestamps) is here, so that the tree (`ExportJSON`) and the rows
/// streamed from COPY (`CopyRow`) produce the same text.
struct JSONBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    func release() { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    var array: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    mutating func removeAll() { count = 0 }

    @inline(__always)
    mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(to: count + n) }
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ run: UnsafeRawBufferPointer) {
        guard let from = run.baseAddress, run.count > 0 else { return }
        reserve(run.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: from, byteCount: run.count)
        count += run.count
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// A line break and two spaces per level.
    @inline(__always)
    mutating func newline(indent: Int) {
        let n = 1 + 2 * indent
        reserve(n)
        base[count] = 0x0A
        (base + count + 1).update(repeating: 0x20, count: 2 * indent)
        count += n
    }

    // MARK: Strings

    @inline(__always)
    static func needsEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x22 || byte == 0x5C }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// The JSON escape of a byte that needs one (`needsEscape`).
    mutating func appendEscape(_ byte: UInt8) {
        switch byte {
        case 0x22: append("\\\"")
        case 0x5C: append("\\\\")
        case 0x0A: append("\\n")
        case 0x0D: append("\\r")
        case 0x09: append("\\t")
        case 0x08: append("\\b")
        case 0x0C: append("\\f")
        default:
            append("\\u00")
            append(Self.hexDigits.utf8Start[Int(byte >> 4)])
            append(Self.hexDigits.utf8Start[Int(byte & 0xF)])
        }
    }

    /// UTF-8 text as a JSON string: in quotes, with `"`, `\` and control
    /// characters escaped; everything else as it is.
    mutating func appendString(_ text: UnsafeRawBufferPointer) {
        reserve(text.count + 2)
        append(0x22)
        var run = 0
        for i in 0..<text.count where Self.needsEscape(text[i]) {
            append(UnsafeRawBufferPointer(rebasing: text[run..<i]))
            appendEscape(text[i])
            run = i + 1
        }
        append(UnsafeRawBufferPointer(rebasing: text[run...]))
        append(0x22)
    }

    mutating func appendString(_ text: String) {
        var text = text
        text.withUTF8 { appendString(UnsafeRawBufferPointer($0)) }
    }

    /// A field of COPY's text format (backslash escapes, see `CopyText`) as a
    /// JSON string, in one pass: the same text as unescaping it, then
    /// `appendString`.
    mutating func appendCopyString(_ field: UnsafeRawBufferPointer) {
        reserve(field.count + 2)
        append(0x22)
        var run = 0, i = 0
        while i < field.count {
            let byte = field[i]
            guard Self.needsEscape(byte) else { i += 1; continue }
            append(UnsafeRawBufferPointer(rebasing: field[run..<i]))
            if byte == 0x5C {
                let (decoded, length) = CopyText.escape(in: field, at: i)
                if Self.needsEscape(decoded) { appendEscape(decoded) } else { append(decoded) }
                i += length
            } else {
                appendEscape(byte)
                i += 1
            }
            run = i
        }
        append(UnsafeRawBufferPointer(rebasing: field[run...]))
        append(0x22)
    }

    // MARK: Timestamps

    /// `2024-05-01 12:00:00.25+00` (timestamptz output with TimeZone UTC,
    /// DateStyle ISO) as `2024-05-01T12:00:00.250000Z`, unquoted. `infinity`,
    /// `-infinity` and anything unexpected are appended unchanged.
    mutating func appendISO8601(_ text: UnsafeRawBufferPointer) {
        let n = text.count
        // YYYY-MM-DD HH:MM:SS[.f{1,6}]+00
        guard n >= 22, text[10] == 0x20, text[4] == UInt8(ascii: "-"),
              text[n - 3] == UInt8(ascii: "+"), text[n - 2] == UInt8(ascii: "0"), text[n - 1] == UInt8(ascii: "0")
        else { return append(text) }
        append(UnsafeRawBufferPointer(rebasing: text[0..<10]))
        append(UInt8(ascii: "T"))
        append(UnsafeRawBufferPointer(rebasing: text[11..<19]))  // HH:MM:SS
        append(UInt8(ascii: "."))
        let fraction = n - 3 > 20 ? UnsafeRawBufferPointer(rebasing: text[20..<(n - 3)]) : UnsafeRawBufferPointer(start: nil, count: 0)
        append(fraction)
        for _ in fraction.count..<max(6, fraction.count) { append(UInt8(ascii: "0")) }
        append(UInt8(ascii: "Z"))
    }

    /// A timestamptz as a JSON string (see `appendISO8601`).
    mutating func appendTime(_ text: UnsafeRawBufferPointer) {
        var converted = JSONBuffer(capacity: 64)
        defer { converted.release() }
        converted.appendISO8601(text)
        appendString(converted.bytes)
    }
}

/// Pretty-printing of one JSON array or object: its opening bracket and a
/// line break before the first element, a comma and a line break before each
/// further one, the closing bracket on a line of its own; `[]` or `{}` when
/// nothing was written. Elements are indented one level deeper than `indent`.
struct JSONContainer {
    private let open: UInt8, close: UInt8
    let indent: Int
    private(set) var isEmpty = true

    static func array(indent: Int) -> JSONContainer { JSONContainer(open: 0x5B, close: 0x5D, indent: indent) }
    static func object(indent: Int) -> JSONContainer { JSONContainer(open: 0x7B, close: 0x7D, indent: indent) }

    private init(open: UInt8, close: UInt8, indent: Int) {
        self.open = open
        self.close = close
        self.indent = indent
    }

    /// Before an element (of an array) or a field (of an object).
    @inline(__always)
    mutating func next(_ out: inout JSONBuffer) {
        out.append(isEmpty ? open : UInt8(ascii: ","))
        isEmpty = false
        out.newline(indent: indent + 1)
    }

    /// Before a field whose name needs no escaping: `"name": `.
    @inline(__always)
    mutating func key(_ name: StaticString, _ out: inout JSONBuffer) {
        next(&out)
        out.append(0x22)
        out.append(name)
        out.append("\": ")
    }

    /// Before a field whose name may need escaping.
    mutating func key(escaping name: String, _ out: inout JSONBuffer) {
        next(&out)
        out.appendString(name)
        out.append(": ")
    }

    func end(_ out: inout JSONBuffer) {
        if isEmpty {
            out.append(open)
        } else {
            out.newline(indent: indent)
        }
        out.append(close)
    }
}
