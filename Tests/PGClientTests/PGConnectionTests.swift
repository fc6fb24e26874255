import Foundation
import PGClient
import TestSupport
import Testing

@Suite("libpq layer", .serialized)
struct PGConnectionTests {
    @Test("connects, runs parameterized queries, reports server facts", arguments: TestServers.versions)
    func queries(major: Int) throws {
        let db = try TestServers.database(major)
        let conn = try db.connect()
        #expect(conn.serverMajorVersion == major)
        #expect(conn.parameterStatus("server_encoding") == "UTF8")
        let r = try conn.query("SELECT $1::int + $2::int AS sum, $3::text IS NULL AS isnull, $4::text AS t", ["40", "2", nil, "it's \"quoted\"\t\\"])
        #expect(r.columns == ["sum", "isnull", "t"])
        #expect(r.rows == [["42", "t", "it's \"quoted\"\t\\"]])
        // A parameter is never spliced into SQL: an injection attempt is just text.
        let inj = try conn.query("SELECT $1::text", ["'); DROP TABLE x; --"])
        #expect(inj.scalar == "'); DROP TABLE x; --")
    }

    @Test("errors carry SQLSTATE, message, detail and hint")
    func errors() throws {
        let conn = try TestServers.database().connect()
        try conn.execute("CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (pid int REFERENCES parent)")
        let missing = #expect(throws: PGError.self) { try conn.query("SELECT * FROM no_such_table") }
        #expect(missing?.sqlState == PGError.undefinedTable)
        #expect(missing?.message.contains("no_such_table") == true)
        let fk = #expect(throws: PGError.self) { try conn.execute("INSERT INTO child VALUES (7)") }
        #expect(fk?.sqlState == PGError.foreignKeyViolation)
        #expect(fk?.detail?.contains("(pid)=(7)") == true)
        let hinted = #expect(throws: PGError.self) { try conn.execute("SELECT lenght('x')") }
        #expect(hinted?.hint?.isEmpty == false)
        #expect(hinted?.description.contains("HINT:") == true)
        // The connection is still usable after errors.
        #expect(try conn.query("SELECT 1").scalar == "1")
    }

    @Test("identifiers that need quoting round-trip through SQL.ident")
    func quoting() throws {
        let conn = try TestServers.database().connect()
        let schema = "Ops", table = "Job \"Runs\""
        try conn.execute("CREATE SCHEMA \(SQL.ident(schema)); CREATE TABLE \(SQL.qualified(schema, table)) (\(SQL.ident("Select")) text)")
        try conn.execute("INSERT INTO \(SQL.qualified(schema, table)) VALUES (\(SQL.literal("a'b\\c")))")
        let r = try conn.query("SELECT \(SQL.ident("Select")) FROM \(SQL.qualified(schema, table))")
        #expect(r.scalar == "a'b\\c")
        #expect(SQL.ident("a\"b") == "\"a\"\"b\"")
    }

    @Test("COPY out and in stream rows with bounded memory, hostile text intact", arguments: TestServers.versions)
    func copyRoundTrip(major: Int) throws {
        let db = try TestServers.database(major)
        let conn = try db.connect()
        try conn.execute("""
            CREATE TABLE src (id int, body text, data bytea);
            INSERT INTO src SELECT g, 'tab\there' || E'\\nnewline\\\\back' || '\\N' || '😀' || g, decode('00ff', 'hex')
            FROM generate_series(1, 50000) g;
            INSERT INTO src VALUES (0, NULL, NULL);
            CREATE TABLE dst (LIKE src);
            """)
        var chunks: [[UInt8]] = []
        var bytes = 0
        let rows = try conn.copyOut("COPY src TO STDOUT") { buf in
            bytes += buf.count
            chunks.append(Array(buf))
        }
        #expect(rows == 50001)
        #expect(chunks.count == 50001)  // one message per row
        let dst = try db.connect()
        let loaded = try dst.copyIn("COPY dst FROM STDIN") { w in
            for chunk in chunks { try w.write(chunk) }
        }
        #expect(loaded == 50001)
        let diff = try conn.query("SELECT count(*) FROM ((TABLE src EXCEPT ALL TABLE dst) UNION ALL (TABLE dst EXCEPT ALL TABLE src)) d")
        #expect(diff.scalar == "0")
    }

    @Test("a consumer error cancels COPY and leaves the connection usable")
    func copyOutAbort() throws {
        struct Stop: Error {}
        let conn = try TestServers.database().connect()
        var seen = 0
        #expect(throws: Stop.self) {
            try conn.copyOut("COPY (SELECT g FROM generate_series(1, 10000000) g) TO STDOUT") { _ in
                seen += 1
                if seen == 1000 { throw Stop() }
            }
        }
        #expect(try conn.query("SELECT 2").scalar == "2")
    }

    @Test("rows one at a time: values, NULLs and parameters as query gives them; errors leave the connection usable")
    func forEachRow() throws {
        let conn = try TestServers.database().connect()
        let sql = "SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'v' || g END AS v, $1::text AS p FROM generate_series(1, $2::int) g ORDER BY g"
        var rows: [QueryResult.Row] = []
        let count = try conn.forEachRow(sql, ["x'y", "2500"]) { rows.append($0) }
        #expect(count == 2500)
        #expect(rows == (try conn.query(sql, ["x'y", "2500"]).rows))
        #expect(try rows[2].optionalString(1) == nil)
        #expect(try rows[0].string(2) == "x'y")
        // A typed accessor's error names the column, as a whole result's does.
        let typed = #expect(throws: PGError.self) { _ = try rows[0].int(1) }
        #expect(typed?.message.contains("v") == true)

        // No rows at all, and a statement that returns none.
        #expect(try conn.forEachRow("SELECT 1 WHERE false") { _ in Issue.record("no row expected") } == 0)
        #expect(try conn.forEachRow("CREATE TEMP TABLE t (a int)") { _ in } == 0)

        // The consumer stops: the rest is dropped, and the connection is idle again.
        struct Stop: Error {}
        var seen = 0
        #expect(throws: Stop.self) {
            try conn.forEachRow("SELECT g FROM generate_series(1, 100000) g") { _ in
                seen += 1
                if seen == 10 { throw Stop() }
            }
        }
        #expect(seen == 10)
        #expect(try conn.query("SELECT 2").scalar == "2")

        // The server fails after some rows were given: its error, with SQLSTATE.
        var before = 0
        let failed = #expect(throws: PGError.self) {
            try conn.forEachRow("SELECT 1 / (g - 500) FROM generate_series(1, 1000) g") { _ in before += 1 }
        }
        #expect(failed?.sqlState == "22012")
        #expect(before < 500)
        #expect(try conn.query("SELECT 3").scalar == "3")

        // A statement that does not parse never starts.
        let bad = #expect(throws: PGError.self) { try conn.forEachRow("SELEC 1") { _ in } }
        #expect(bad?.sqlState == "42601")
        #expect(try conn.query("SELECT 4").scalar == "4")
    }

    @Test("a failed COPY IN rolls back and names the problem")
    func copyInErrors() throws {
        struct Bad: Error {}
        let conn = try TestServers.database().connect()
        try conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        #expect(throws: Bad.self) {
            try conn.copyIn("COPY t FROM STDIN") { w in
                try w.write("1\n2\n")
                throw Bad()
            }
        }
        #expect(try conn.query("SELECT count(*) FROM t").scalar == "0")
        let dup = #expect(throws: PGError.self) {
            try conn.copyIn("COPY t FROM STDIN") { w in try w.write("1\n1\n") }
        }
        #expect(dup?.sqlState == PGError.uniqueViolation)
        let badText = #expect(throws: PGError.self) {
            try conn.copyIn("COPY t FROM STDIN") { w in try w.write("x\n") }
        }
        #expect(badText?.sqlState == PGError.invalidTextRepresentation)
        #expect(try conn.query("SELECT count(*) FROM t").scalar == "0")
    }

    @Test("a running statement can be cancelled from another thread")
    func cancel() async throws {
        let conn = try TestServers.database().connect()
        let canceller = try #require(conn.makeCanceller())
        let task = Task {
            try await Blocking.run("sleeper", on: conn) { c in try c.execute("SELECT pg_sleep(30)") }
        }
        try await Task.sleep(for: .milliseconds(300))
        canceller.cancel()
        let started = Date()
        let result = await task.result
        #expect(Date().timeIntervalSince(started) < 10)
        guard case .failure(let error as PGError) = result else {
            Issue.record("expected a cancellation error, got \(result)")
            return
        }
        #expect(error.sqlState == PGError.queryCanceled)
        #expect(try conn.query("SELECT 3").scalar == "3")
    }

    @Test("task cancellation cancels the server-side statement")
    func taskCancel() async throws {
        let conn = try TestServers.database().connect()
        let task = Task {
            try await Blocking.run("sleeper", on: conn) { c in try c.execute("SELECT pg_sleep(30)") }
        }
        try await Task.sleep(for: .milliseconds(300))
        let started = Date()
        task.cancel()
        _ = await task.result
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("connection failures are clear and never show the password")
    func connectionErrors() throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        let secret = "s3cret-Pa55-\(UUID().uuidString.prefix(6))"
        try conn.execute("CREATE ROLE alice LOGIN PASSWORD \(SQL.literal(secret))")
        // Our clusters trust local connections, so prove redaction with the parser,
        // and a clear error for a database that does not exist.
        let uri = "postgresql://alice:\(secret)@localhost:1/nodb"
        #expect(!ConnInfo.redacted(uri).contains(secret))
        #expect(ConnInfo.redacted(uri).contains("user=alice"))
        #expect(!ConnInfo.redacted("host=/tmp password='\(secret)' dbname=x").contains(secret))
        let err = #expect(throws: PGError.self) { try PGConnection(conninfo: uri) }
        #expect(err?.kind == .connection)
        #expect(err?.description.contains(secret) == false)
        let badDB = #expect(throws: PGError.self) {
            try PGConnection(conninfo: db.server.conninfo(database: "no_such_db"))
        }
        #expect(badDB?.message.contains("no_such_db") == true)
        #expect(badDB?.hint != nil)
        let invalid = #expect(throws: PGError.self) { try ConnInfo.parseOrThrow("host=x password='\(secret)' bogus") }
        #expect(invalid?.description.contains(secret) == false)
    }

    @Test("a terminated backend surfaces as a lost connection")
    func terminated() throws {
        let db = try TestServers.database()
        let victim = try db.connect()
        let admin = try db.connect()
        try admin.query("SELECT pg_terminate_backend($1::int)", [String(victim.backendPID)])
        let err = #expect(throws: PGError.self) { try victim.query("SELECT 1") }
        #expect(err?.isConnectionFailure == true)
    }
}
