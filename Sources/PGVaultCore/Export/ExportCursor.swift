import PGClient

/// Reads a query's rows through a server-side cursor, a page at a time, so a
/// user with millions of rows costs one page of memory.
final class ExportCursor {
    private let conn: PGConnection
    private let name: String
    private let batchSize: Int
    private var exhausted = false

    init(conn: PGConnection, name: String, sql: String, parameters: [String?], batchSize: Int) throws {
        self.conn = conn
        self.name = name
        self.batchSize = max(1, batchSize)
        try conn.query("DECLARE \(SQL.ident(name)) NO SCROLL CURSOR FOR \(sql)", parameters)
    }

    /// The next page of rows; nil at the end.
    func nextPage() throws -> [QueryResult.Row]? {
        guard !exhausted else { return nil }
        let page = try conn.query("FETCH FORWARD \(batchSize) FROM \(SQL.ident(name))").rows
        if page.count < batchSize { exhausted = true }
        return page.isEmpty ? nil : page
    }

    func close() throws { try conn.execute("CLOSE \(SQL.ident(name))") }
}
