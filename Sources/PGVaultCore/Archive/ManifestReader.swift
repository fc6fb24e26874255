/// Reads manifest.json as it streams out of the archive, so the document is
/// never held whole: at 10,000 partitions it is 37 MB, and a restore began
/// by holding it beside what was decoded from it (92 MiB of RSS before the
/// pre-data).
///
/// The elements of the top-level `tables` and `units` arrays, nearly all of
/// the document, are each decoded (``LazyJSONDecoder``) as soon as their last
/// byte arrives. The rest of the document, with those two arrays left empty,
/// is kept and decoded at the end. Every byte is checked by one of the two:
/// an element by its own decoding, the rest as a document of its own. This
/// reader only follows the nesting and the strings, to know where an element
/// ends.
///
/// A key written with escapes (`"t\u0061bles"`) is not recognized here; its
/// array stays in the rest and is decoded there, as the whole document's
/// decoding would.
struct ManifestReader {
    enum Streamed: String { case tables, units }

    /// The most the document may hold (and so one element: a unit of a
    /// repository backup lists its chunks, and a table never split into
    /// units can have hundreds of thousands).
    static let maxDocument = 256 << 20

    /// The document without the streamed arrays' elements.
    private var rest: [UInt8] = []
    /// Where bytes were left out of `rest`: from rest offset `at` on, the
    /// document's offsets are `dropped` larger (for syntax errors' offsets).
    private var gaps: [(at: Int, dropped: Int)] = [(0, 0)]
    private var element: [UInt8] = []
    private var elementStart = 0
    private var offset = 0
    private var depth = 0
    private var inString = false, escaped = false
    /// The last string at the top level (a key, before an array opens).
    private var key: [UInt8] = []
    private var streaming: Streamed?
    private var streamed: Set<Streamed> = []
    private var tables: [Manifest.Table] = [], units: [Manifest.Unit] = []
    /// The first element that did not decode; the later ones are not decoded.
    private var failure: Error?
    private let strings = JSONStrings()
    /// Equal column lists share one array: every partition of a partitioned
    /// table has its parent's columns, and every unit of a table the same
    /// COPY column names; decoded, each would be an array of its own, which
    /// at 10,000 partitions is MBs held for the whole run.
    private var columnLists: [[Manifest.Column]: [Manifest.Column]] = [:]
    private var nameLists: [[String]: [String]] = [:]

    mutating func feed(_ chunk: UnsafeRawBufferPointer, source: String) throws {
        guard offset + chunk.count <= Self.maxDocument else {
            throw PGVaultError.archive("\(source): manifest.json is larger than \(Self.maxDocument >> 20) MiB; refusing it")
        }
        for byte in chunk {
            take(byte)
            offset += 1
        }
    }

    private mutating func take(_ byte: UInt8) {
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
                return keep(byte)
            }
            // A string at the top level (nesting does not change inside one).
            if depth == 1 { key.append(byte) }
            return keep(byte)
        }
        switch byte {
        case UInt8(ascii: "\""):
            inString = true
            if depth == 1 { key.removeAll(keepingCapacity: true) }
        case UInt8(ascii: "["):
            if depth == 1, streaming == nil, let kind = Streamed(rawValue: String(decoding: key, as: UTF8.self)),
               streamed.insert(kind).inserted {
                // The array stays in the rest, empty.
                rest.append(byte)
                depth += 1
                streaming = kind
                return
            }
            depth += 1
        case UInt8(ascii: "{"):
            depth += 1
        case UInt8(ascii: "]"), UInt8(ascii: "}"):
            depth -= 1
            if streaming != nil, depth == 1 {
                // The streamed array's end: its last element, if any, is whole.
                complete()
                streaming = nil
                gaps.append((rest.count, offset - rest.count))
                rest.append(byte)
                return
            }
        case UInt8(ascii: ","):
            if streaming != nil, depth == 2 {
                complete()
                return
            }
        case 0x20, 0x0A, 0x0D, 0x09:
            if streaming != nil, depth == 2, element.isEmpty { return }
        default:
            break
        }
        keep(byte)
        // An element that is an object or an array ends with its bracket.
        if streaming != nil, depth == 2, byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { complete() }
    }

    /// A byte of an element, or of the rest.
    private mutating func keep(_ byte: UInt8) {
        if streaming != nil, depth >= 2 {
            if element.isEmpty { elementStart = offset }
            element.append(byte)
        } else {
            rest.append(byte)
        }
    }

    /// Decodes the element read, unless one failed before.
    private mutating func complete() {
        defer { element.removeAll(keepingCapacity: true) }
        guard !element.isEmpty, failure == nil, let kind = streaming else { return }
        let path: [any CodingKey] = [JSONIndexKey(stringValue: kind.rawValue), JSONIndexKey(index: kind == .tables ? tables.count : units.count)]
        do {
            try element.withUnsafeBytes { raw in
                switch kind {
                case .tables:
                    var table = try LazyJSONDecoder.decode(Manifest.Table.self, from: raw, path: path, strings: strings)
                    table.columns = Self.shared(table.columns, in: &columnLists)
                    tables.append(table)
                case .units:
                    var unit = try LazyJSONDecoder.decode(Manifest.Unit.self, from: raw, path: path, strings: strings)
                    unit.columns = Self.shared(unit.columns, in: &nameLists)
                    units.append(unit)
                }
            }
        } catch let error as JSONSyntaxError {
            failure = JSONSyntaxError(offset: elementStart + error.offset, reason: error.reason)
        } catch {
            failure = error
        }
    }

    private static func shared<T: Hashable>(_ list: T, in lists: inout [T: T]) -> T {
        if let same = lists[list] { return same }
        lists[list] = list
        return list
    }

    /// The manifest. What it throws, first found first: a syntax error in an
    /// element (after which this reader's view of the nesting may be wrong),
    /// one in the rest, a decoding error of an element, one of the rest.
    mutating func finish() throws -> Manifest {
        if inString || depth != 0 {
            // Cut short: an element cut in two is refused by its decoding.
            complete()
        }
        if let failure = failure as? JSONSyntaxError { throw failure }
        let decoded = Result { try rest.withUnsafeBytes { try LazyJSONDecoder.decode(Manifest.self, from: $0, strings: strings) } }
        if case .failure(let error as JSONSyntaxError) = decoded {
            let dropped = gaps.last { $0.at <= error.offset }?.dropped ?? 0
            throw JSONSyntaxError(offset: error.offset + dropped, reason: error.reason)
        }
        if let failure { throw failure }
        var manifest = try decoded.get()
        // A document without the arrays (or with them in another form) fails
        // above; one with them empty keeps what the rest held.
        if streamed.contains(.tables) { manifest.tables = tables }
        if streamed.contains(.units) { manifest.units = units }
        return manifest
    }

    /// The rest of the document: its header, when the whole did not decode.
    func header<T: Decodable>(_ type: T.Type) throws -> T {
        try rest.withUnsafeBytes { try LazyJSONDecoder.decode(type, from: $0) }
    }
}
