import CLibPQ

/// The rows of a query, copied out of the `PGresult` (which is freed at once), with
/// every value as text and SQL NULL as nil.
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [Row]
    /// `PQcmdTuples`: rows affected by INSERT/UPDATE/DELETE, 0 otherwise.
    public let affectedRows: Int
    /// The statement, shortened, so that a value error can say which query it came from.
    public let context: String

    init(copying res: OpaquePointer, context: String) {
        let nFields = PQnfields(res)
        let nTuples = PQntuples(res)
        let columns = (0..<nFields).map { String(cString: PQfname(res, $0)) }
        var rows: [Row] = []
        rows.reserveCapacity(Int(nTuples))
        for r in 0..<nTuples {
            let values = (0..<nFields).map { c in
                PQgetisnull(res, r, c) == 1 ? nil : String(cString: PQgetvalue(res, r, c))
            }
            rows.append(Row(values: values, columns: columns, context: context))
        }
        self.columns = columns
        self.rows = rows
        self.context = context
        affectedRows = Int(String(cString: PQcmdTuples(res))) ?? 0
    }

    /// The first column of the first row, nil for no rows or NULL.
    public var scalar: String? { rows.first?.first ?? nil }

    /// Index of a column by name.
    public func column(_ name: String) -> Int? { columns.firstIndex(of: name) }

    /// The first row; throws if the query returned none (a query that always returns
    /// one row, like `SELECT count(*)`, uses this instead of `rows[0]`).
    public func firstRow() throws -> Row {
        guard let row = rows.first else {
            throw Self.unexpected("the query returned no rows, where pgvault expected one", context: context)
        }
        return row
    }

    /// A result pgvault did not expect from its own query: a bug to report, not a user error.
    static func unexpected(_ message: String, context: String?) -> PGError {
        PGError(
            kind: .protocolViolation, message: message,
            hint: "This is a bug in pgvault or a server state it does not handle; please report it with this message.",
            context: context)
    }
}
