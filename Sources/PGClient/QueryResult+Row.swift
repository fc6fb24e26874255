extension QueryResult {
    /// One row of a ``QueryResult``: the values as text (nil for SQL NULL), read either
    /// raw by subscript or through typed accessors.
    ///
    /// The typed accessors (`string`, `int64`, `bool`, ...) throw a ``PGError`` naming the
    /// column and the query when a value is NULL or does not parse, instead of the
    /// crash a force unwrap gives or the wrong number a `?? 0` gives. Columns that may
    /// legitimately be NULL are read with the `optional...` variants.
    public struct Row: RandomAccessCollection, Sendable, Equatable, ExpressibleByArrayLiteral {
        public let values: [String?]
        /// Column names of the result (shared by all its rows); empty for a literal row.
        let columns: [String]
        let context: String?

        init(values: [String?], columns: [String], context: String?) {
            self.values = values
            self.columns = columns
            self.context = context
        }

        /// A row built by hand, for comparing a result in tests: `rows == [["1", nil]]`.
        public init(arrayLiteral values: String?...) {
            self.init(values: values, columns: [], context: nil)
        }

        /// Rows are equal when their values are; names and query do not matter.
        public static func == (a: Row, b: Row) -> Bool { a.values == b.values }

        public var startIndex: Int { values.startIndex }
        public var endIndex: Int { values.endIndex }
        public subscript(position: Int) -> String? { values[position] }

        // MARK: - Required values: NULL or a parse failure throws

        public func string(_ column: Int) throws -> String { try required(column, "text") }
        public func int(_ column: Int) throws -> Int { try parse(column, "an integer", Int.init) }
        public func int64(_ column: Int) throws -> Int64 { try parse(column, "a bigint", Int64.init) }
        public func uint32(_ column: Int) throws -> UInt32 { try parse(column, "an oid", UInt32.init) }
        public func double(_ column: Int) throws -> Double { try parse(column, "a number", Self.double) }
        /// PostgreSQL's text form of boolean: `t` or `f`.
        public func bool(_ column: Int) throws -> Bool { try parse(column, "a boolean (t or f)", Self.bool) }

        // MARK: - Values that may be NULL: nil for NULL, a parse failure still throws

        public func optionalString(_ column: Int) throws -> String? { try optional(column) }
        public func optionalInt(_ column: Int) throws -> Int? { try optional(column).map { _ in try int(column) } }
        public func optionalInt64(_ column: Int) throws -> Int64? { try optional(column).map { _ in try int64(column) } }
        public func optionalDouble(_ column: Int) throws -> Double? { try optional(column).map { _ in try double(column) } }
        public func optionalBool(_ column: Int) throws -> Bool? { try optional(column).map { _ in try bool(column) } }

        // MARK: - Parsing

        /// `double precision` text, including PostgreSQL's spellings of the special values.
        static func double(_ text: String) -> Double? {
            switch text {
            case "NaN": .nan
            case "Infinity": .infinity
            case "-Infinity": -.infinity
            default: Double(text)
            }
        }

        static func bool(_ text: String) -> Bool? {
            switch text {
            case "t": true
            case "f": false
            default: nil
            }
        }

        private func optional(_ column: Int) throws -> String? {
            guard values.indices.contains(column) else {
                throw failure("has no \(name(column)); it has \(values.count) column(s)")
            }
            return values[column]
        }

        private func required(_ column: Int, _ type: String) throws -> String {
            guard let text = try optional(column) else {
                throw failure("returned NULL in \(name(column)), where pgvault expected \(type)")
            }
            return text
        }

        private func parse<T>(_ column: Int, _ type: String, _ convert: (String) -> T?) throws -> T {
            let text = try required(column, type)
            guard let value = convert(text) else {
                throw failure("returned \"\(text.prefix(100))\" in \(name(column)), which is not \(type)")
            }
            return value
        }

        /// `column "oid" (index 0)`, or `column index 0` when names are not known.
        private func name(_ column: Int) -> String {
            columns.indices.contains(column) ? "column \"\(columns[column])\" (index \(column))" : "column index \(column)"
        }

        private func failure(_ what: String) -> PGError {
            QueryResult.unexpected("the query \(what)", context: context)
        }
    }
}
