import PGClient

/// The columns of one statement's SELECT list, declared next to its SQL.
/// The list is built from the cases (``selectList``) and rows are read by
/// case (a case's raw value is its position, counted by Swift in declaration
/// order), so reordering the cases reorders both: a field can never be read
/// from another column. Cases take no explicit raw values (a test checks).
protocol SelectColumns: CaseIterable, RawRepresentable, Sendable where RawValue == Int {
    /// The column's expression in the SELECT list, with its alias if any.
    var sql: String { get }
}

extension SelectColumns {
    /// The expressions, comma-separated, in position order.
    static var selectList: String { allCases.map(\.sql).joined(separator: ", ") }

    static var count: Int { allCases.count }
}

extension QueryResult.Row {
    /// The value of `column` as text, or nil for NULL.
    subscript<C: SelectColumns>(_ column: C) -> String? { self[column.rawValue] }

    /// The value of `column`; throws (naming the column) on NULL.
    func string<C: SelectColumns>(_ column: C) throws -> String { try string(column.rawValue) }

    /// The value of `column` as an integer, nil for NULL; throws if it is not one.
    func optionalInt<C: SelectColumns>(_ column: C) throws -> Int? { try optionalInt(column.rawValue) }
}
