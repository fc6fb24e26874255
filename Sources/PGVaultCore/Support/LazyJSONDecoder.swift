import Foundation

/// A `Decoder` that reads a JSON document in place, for documents too large
/// to hold twice: a manifest at 10,000 partitions is tens of MB.
///
/// Foundation's `JSONDecoder` first turns the whole document into a map of
/// every value, then builds the result from the map: beside the document and
/// the result it holds that map, about twice the document again. This one
/// keeps nothing but the bytes: a keyed container notes where each of its
/// members begins, an unkeyed one where its next element is, and a value is
/// parsed when it is asked for. Equal short strings (column names and types,
/// repeated in every partition) share one storage.
///
/// The document is checked whole before anything is decoded (one pass of
/// ``JSONScanner/skipValue``), so malformed JSON anywhere is a
/// ``JSONSyntaxError`` and never a partial result. What does not match the
/// type is a `DecodingError` with its coding path, as `JSONDecoder` gives.
/// Only what pgvault's own types use is special-cased: no Date, Data, URL or
/// Decimal strategies (those decode through their own Codable forms).
struct LazyJSONDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try decode(type, from: $0) }
    }

    /// `path`: where the value sits in a larger document (its errors' coding
    /// path starts there); `strings`: the shared storage of repeated strings,
    /// for values decoded one by one out of one document (``ManifestReader``).
    static func decode<T: Decodable>(
        _ type: T.Type, from raw: UnsafeRawBufferPointer, path: [any CodingKey] = [], strings: JSONStrings = JSONStrings()
    ) throws -> T {
        let document = JSONDocument(raw, strings: strings)
        var scanner = JSONScanner(raw)
        scanner.skipWhitespace()
        let root = scanner.offset
        try scanner.skipValue()
        scanner.skipWhitespace()
        guard scanner.offset == raw.count else {
            throw JSONSyntaxError(offset: scanner.offset, reason: "content after the document's end")
        }
        return try T(from: JSONValueDecoder(document, at: root, parentPath: Array(path.dropLast()), key: path.last))
    }
}

/// Equal strings of 16 to 31 UTF-8 bytes made once: too long for Swift's
/// inline form, short enough to be names and types that repeat (a column's,
/// in every partition).
final class JSONStrings {
    private var interned: Set<String> = []

    func share(_ value: String) -> String {
        let length = value.utf8.count
        guard length >= 16, length < 32 else { return value }
        return interned.insert(value).memberAfterInsert
    }
}

/// Malformed JSON: where, and what was wrong.
struct JSONSyntaxError: Error, CustomStringConvertible {
    var offset: Int
    var reason: String
    var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// The bytes being decoded and the strings already made from them.
private final class JSONDocument {
    let bytes: UnsafeRawBufferPointer
    private let strings: JSONStrings

    init(_ bytes: UnsafeRawBufferPointer, strings: JSONStrings) {
        self.bytes = bytes
        self.strings = strings
    }

    func string(at offset: Int) throws -> String {
        var scanner = JSONScanner(bytes, at: offset)
        return strings.share(try scanner.string())
    }
}

/// A cursor over JSON bytes. `skipValue` checks the grammar as it goes,
/// unless the bytes are `checked` (a pass has already done so): then it
/// only finds where the value ends.
struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int
    private let checked: Bool
    /// Deeper nesting than this is refused rather than recursed into.
    static let maxDepth = 256

    init(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0, checked: Bool = false) {
        self.bytes = bytes
        self.offset = offset
        self.checked = checked
    }

    var atEnd: Bool { offset >= bytes.count }
    var peek: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x0A, 0x0D, 0x09: offset += 1
            default: return
            }
        }
    }

    /// Moves past the whitespace after an element, its comma if it has one, and the whitespace after that.
    mutating func skipComma() throws {
        skipWhitespace()
        if peek == UInt8(ascii: ",") { offset += 1 }
        skipWhitespace()
    }

    func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: offset, reason: reason) }

    mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard peek == byte else { throw fail(atEnd ? "the document ends where \(what) should be" : "expected \(what)") }
        offset += 1
    }

    /// Moves past one value, checking its grammar.
    mutating func skipValue(depth: Int = 0) throws {
        guard depth < Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth) levels") }
        guard let byte = peek else { throw fail("the document ends where a value should be") }
        switch byte {
        case UInt8(ascii: "{"):
            offset += 1
            skipWhitespace()
            if peek == UInt8(ascii: "}") { offset += 1; return }
            while true {
                skipWhitespace()
                try skipString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':'")
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                if peek == UInt8(ascii: ",") { offset += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                return
            }
        case UInt8(ascii: "["):
            offset += 1
            skipWhitespace()
            if peek == UInt8(ascii: "]") { offset += 1; return }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                if peek == UInt8(ascii: ",") { offset += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']'")
                return
            }
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default:
            _ = try number()
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard offset + count <= bytes.count,
              memcmp(bytes.baseAddress! + offset, word.utf8Start, count) == 0
        else { throw fail("not a JSON value") }
        offset += count
    }

    /// Moves past a string, checking its escapes, its control characters
    /// and its UTF-8 unless the bytes are already checked.
    mutating func skipString() throws {
        guard checked else {
            _ = try stringBounds(validate: true)
            return
        }
        offset += 1
        while let quote = memchr(bytes.baseAddress! + offset, 0x22, bytes.count - offset) {
            let at = bytes.baseAddress!.distance(to: UnsafeRawPointer(quote))
            // The quote ends the string unless an odd run of backslashes escapes it.
            var backslashes = 0
            while at - backslashes - 1 >= offset, bytes[at - backslashes - 1] == UInt8(ascii: "\\") { backslashes += 1 }
            offset = at + 1
            if backslashes % 2 == 0 { return }
        }
        throw fail("a string is not closed")
    }

    /// The string at the cursor, unescaped.
    mutating func string() throws -> String {
        let start = offset
        let (contentStart, contentEnd, escaped) = try stringBounds(validate: false)
        let content = UnsafeRawBufferPointer(rebasing: bytes[contentStart..<contentEnd])
        if !escaped {
            guard let text = String(validating: content.bindMemory(to: UInt8.self), as: UTF8.self) else {
                throw JSONSyntaxError(offset: start, reason: "a string is not valid UTF-8")
            }
            return text
        }
        return try unescape(content, from: contentStart)
    }

    /// Where the string's content lies, and whether it holds escapes.
    private mutating func stringBounds(validate: Bool) throws -> (Int, Int, Bool) {
        guard peek == UInt8(ascii: "\"") else { throw fail(atEnd ? "the document ends where a string should be" : "expected a string") }
        offset += 1
        let start = offset
        var escaped = false
        var ascii = true
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let end = offset
                offset += 1
                if validate, !ascii, !escaped,
                   String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<end]).bindMemory(to: UInt8.self), as: UTF8.self) == nil {
                    throw JSONSyntaxError(offset: start - 1, reason: "a string is not valid UTF-8")
                }
                if validate, escaped {
                    _ = try unescape(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), from: start)
                }
                return (start, end, escaped)
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                offset += 2
                continue
            }
            if byte < 0x20 { throw fail("a control character inside a string") }
            if byte >= 0x80 { ascii = false }
            offset += 1
        }
        throw JSONSyntaxError(offset: start - 1, reason: "a string is not closed")
    }

    private func unescape(_ content: UnsafeRawBufferPointer, from base: Int) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(content.count)
        var i = 0
        func bad(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: base + i, reason: reason) }
        func hex4(_ at: Int) throws -> UInt32 {
            guard let value = JSONEscape.hex4(content, at: at) else {
                throw bad(at + 4 <= content.count ? "a \\u escape has a character that is not hexadecimal" : "a \\u escape is cut short")
            }
            return value
        }
        while i < content.count {
            let byte = content[i]
            guard byte == UInt8(ascii: "\\") else { out.append(byte); i += 1; continue }
            guard i + 1 < content.count else { throw bad("a string ends with a lone backslash") }
            if let escaped = JSONEscape.byte(for: content[i + 1]) {
                out.append(escaped)
                i += 2
                continue
            }
            guard content[i + 1] == UInt8(ascii: "u") else { throw bad("an unknown escape in a string") }
            var scalar = try hex4(i + 2)
            var length = 6
            if (0xD800..<0xDC00).contains(scalar) {
                guard i + 12 <= content.count, content[i + 6] == UInt8(ascii: "\\"), content[i + 7] == UInt8(ascii: "u") else {
                    throw bad("a \\u escape is half of a surrogate pair without the other half")
                }
                let low = try hex4(i + 8)
                guard (0xDC00..<0xE000).contains(low) else { throw bad("a \\u surrogate pair's second half is not a low surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                length = 12
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw bad("a \\u escape is a low surrogate without a high one")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw bad("a \\u escape is not a Unicode scalar") }
            out.append(contentsOf: String(Character(unicode)).utf8)
            i += length
        }
        guard let text = String(validating: out, as: UTF8.self) else {
            throw JSONSyntaxError(offset: base, reason: "a string is not valid UTF-8")
        }
        return text
    }

    /// Moves past a number (JSON's grammar), returning its text's bounds and
    /// whether it is an integer (no fraction, no exponent).
    mutating func number() throws -> (start: Int, end: Int, integer: Bool) {
        let start = offset
        func digit(_ b: UInt8?) -> Bool { b.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? false }
        if peek == UInt8(ascii: "-") { offset += 1 }
        guard digit(peek) else { throw fail(atEnd ? "the document ends where a value should be" : "not a JSON value") }
        if peek == UInt8(ascii: "0") {
            offset += 1
            if digit(peek) { throw fail("a number has a leading zero") }
        } else {
            while digit(peek) { offset += 1 }
        }
        var integer = true
        if peek == UInt8(ascii: ".") {
            integer = false
            offset += 1
            guard digit(peek) else { throw fail("a number's fraction has no digits") }
            while digit(peek) { offset += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            integer = false
            offset += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { offset += 1 }
            guard digit(peek) else { throw fail("a number's exponent has no digits") }
            while digit(peek) { offset += 1 }
        }
        return (start, offset, integer)
    }

    func text(_ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }
}

// MARK: - Decoder

private struct JSONValueDecoder: Decoder {
    let document: JSONDocument
    let offset: Int
    /// The path is made only when asked for (by a container or an error):
    /// most values are read without it.
    private let parentPath: [any CodingKey]
    private let key: (any CodingKey)?
    var codingPath: [any CodingKey] { key.map { parentPath + [$0] } ?? parentPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ document: JSONDocument, at offset: Int, parentPath: [any CodingKey], key: (any CodingKey)?) {
        self.document = document
        self.offset = offset
        self.parentPath = parentPath
        self.key = key
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard document.bytes[offset] == UInt8(ascii: "{") else {
            throw mismatch([String: Int].self, isNull: document.bytes[offset] == UInt8(ascii: "n"))
        }
        return KeyedDecodingContainer(try JSONKeyedContainer<Key>(document, object: offset, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard document.bytes[offset] == UInt8(ascii: "[") else {
            throw mismatch([Int].self, isNull: document.bytes[offset] == UInt8(ascii: "n"))
        }
        return JSONUnkeyedContainer(document, array: offset, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func mismatch(_ type: Any.Type, isNull: Bool) -> DecodingError {
        let context = DecodingError.Context(codingPath: codingPath, debugDescription: isNull ? "found null" : "found another kind of value")
        return isNull ? .valueNotFound(type, context) : .typeMismatch(type, context)
    }
}

extension JSONValueDecoder: SingleValueDecodingContainer {
    private var first: UInt8 { document.bytes[offset] }

    func decodeNil() -> Bool { first == UInt8(ascii: "n") }

    func decode(_ type: Bool.Type) throws -> Bool {
        switch first {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: throw mismatch(type, isNull: decodeNil())
        }
    }

    func decode(_ type: String.Type) throws -> String {
        guard first == UInt8(ascii: "\"") else { throw mismatch(type, isNull: decodeNil()) }
        return try document.string(at: offset)
    }

    private var isNumber: Bool {
        first == UInt8(ascii: "-") || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9"))
    }

    func decode(_ type: Double.Type) throws -> Double {
        guard isNumber else { throw mismatch(type, isNull: decodeNil()) }
        var scanner = JSONScanner(document.bytes, at: offset)
        let (start, end, _) = try scanner.number()
        guard let value = Double(scanner.text(start, end)), value.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "the number does not fit in a Double"))
        }
        return value
    }

    func decode(_ type: Float.Type) throws -> Float {
        let narrowed = Float(try decode(Double.self))
        guard narrowed.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "the number does not fit in a Float"))
        }
        return narrowed
    }

    func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard isNumber else { throw mismatch(type, isNull: decodeNil()) }
        var scanner = JSONScanner(document.bytes, at: offset)
        let (start, end, integer) = try scanner.number()
        if integer, let value = T(scanner.text(start, end)) { return value }
        // 1e3 or 2.0 is an integer too, when it is one exactly.
        if !integer, let double = Double(scanner.text(start, end)), let value = T(exactly: double) { return value }
        throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "the number \(scanner.text(start, end)) does not fit in \(type)"))
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }
}

/// An object's members: for each, where its key and its value begin. The
/// keys are compared as bytes; a key with escapes is unescaped once.
private struct JSONKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    private struct Member {
        var keyStart: Int
        var keyEnd: Int
        var escapedKey: String?
        var value: Int
    }

    let document: JSONDocument
    let codingPath: [any CodingKey]
    private var members: [Member] = []

    init(_ document: JSONDocument, object: Int, codingPath: [any CodingKey]) throws {
        self.document = document
        self.codingPath = codingPath
        var scanner = JSONScanner(document.bytes, at: object + 1, checked: true)
        scanner.skipWhitespace()
        if scanner.peek == UInt8(ascii: "}") { return }
        while true {
            scanner.skipWhitespace()
            let keyAt = scanner.offset
            try scanner.skipString()
            let keyEnd = scanner.offset - 1
            var escaped: String?
            if document.bytes[(keyAt + 1)..<keyEnd].contains(UInt8(ascii: "\\")) {
                escaped = try document.string(at: keyAt)
            }
            scanner.skipWhitespace()
            try scanner.expect(UInt8(ascii: ":"), "':'")
            scanner.skipWhitespace()
            members.append(Member(keyStart: keyAt + 1, keyEnd: keyEnd, escapedKey: escaped, value: scanner.offset))
            try scanner.skipValue()
            scanner.skipWhitespace()
            guard scanner.peek == UInt8(ascii: ",") else { return }
            try scanner.skipComma()
        }
    }

    private func keyText(_ member: Member) -> String {
        member.escapedKey ?? String(decoding: UnsafeRawBufferPointer(rebasing: document.bytes[member.keyStart..<member.keyEnd]), as: UTF8.self)
    }

    var allKeys: [Key] { members.compactMap { Key(stringValue: keyText($0)) } }

    private func find(_ key: Key) -> Member? {
        var name = key.stringValue
        return name.withUTF8 { wanted in
            // The first of equal keys wins, as in Foundation's JSONDecoder.
            for member in members {
                if let escaped = member.escapedKey {
                    if escaped == key.stringValue { return member }
                    continue
                }
                let length = member.keyEnd - member.keyStart
                if length == wanted.count,
                   length == 0 || memcmp(wanted.baseAddress!, document.bytes.baseAddress! + member.keyStart, length) == 0 {
                    return member
                }
            }
            return nil
        }
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }

    private func value(_ key: Key) throws -> JSONValueDecoder {
        guard let member = find(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for the key '\(key.stringValue)'"))
        }
        return JSONValueDecoder(document, at: member.value, parentPath: codingPath, key: key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key).decodeNil() }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try value(key).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try value(key).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try value(key).decode(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try value(key).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try value(key).decode(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try value(key).decode(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try value(key).decode(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try value(key).decode(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try value(key).decode(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try value(key).decode(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try value(key).decode(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try value(key).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try value(key).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try value(key).decode(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: value(key)) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try value(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try value(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        guard let member = members.last(where: { keyText($0) == "super" }) else {
            throw DecodingError.keyNotFound(JSONIndexKey(stringValue: "super"), .init(codingPath: codingPath, debugDescription: "no value for the key 'super'"))
        }
        return JSONValueDecoder(document, at: member.value, parentPath: codingPath, key: JSONIndexKey(stringValue: "super"))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder { try value(key) }
}

/// An array's elements, read one after another.
private struct JSONUnkeyedContainer: UnkeyedDecodingContainer {
    let document: JSONDocument
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0
    private var next: Int
    private let start: Int

    init(_ document: JSONDocument, array: Int, codingPath: [any CodingKey]) {
        self.document = document
        self.codingPath = codingPath
        var scanner = JSONScanner(document.bytes, at: array + 1, checked: true)
        scanner.skipWhitespace()
        next = scanner.offset
        start = scanner.offset
    }

    var isAtEnd: Bool { document.bytes[next] == UInt8(ascii: "]") }

    /// Counted by a pass over the elements (the document is already checked).
    var count: Int? {
        var scanner = JSONScanner(document.bytes, at: start, checked: true)
        var n = 0
        do {
            while scanner.peek != UInt8(ascii: "]") {
                try scanner.skipValue()
                n += 1
                try scanner.skipComma()
            }
        } catch { return nil }
        return n
    }

    private mutating func element() throws -> JSONValueDecoder {
        let key = JSONIndexKey(index: currentIndex)
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath + [key], debugDescription: "the array has no more elements"))
        }
        let value = JSONValueDecoder(document, at: next, parentPath: codingPath, key: key)
        var scanner = JSONScanner(document.bytes, at: next, checked: true)
        try scanner.skipValue()
        try scanner.skipComma()
        next = scanner.offset
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, document.bytes[next] == UInt8(ascii: "n") else { return false }
        _ = try element()
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: element()) }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try element().decode(type) }
    mutating func decode(_ type: String.Type) throws -> String { try element().decode(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try element().decode(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try element().decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try element().decode(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try element().decode(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try element().decode(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try element().decode(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try element().decode(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try element().decode(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try element().decode(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try element().decode(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try element().decode(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try element().decode(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try element().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try element().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try element() }
}

struct JSONIndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { self.init(index: intValue) }
    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
}
