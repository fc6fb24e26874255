import PGClient
import TestSupport
import Testing

@Suite("typed row accessors", .serialized)
struct QueryRowTests {
    @Test("typed accessors read text, integers, oids, numbers and booleans", arguments: TestServers.versions)
    func typedValues(major: Int) throws {
        let conn = try TestServers.database(major).connect()
        let row = try conn.query("""
            SELECT 'héllo'::text, 42::int, 9000000000::bigint, 'pg_class'::regclass::oid, 2.5::float8,
                   'NaN'::float8, '-Infinity'::float8, true, false
            """).firstRow()
        #expect(try row.string(0) == "héllo")
        #expect(try row.int(1) == 42)
        #expect(try row.int64(2) == 9_000_000_000)
        #expect(try row.uint32(3) == 1259)
        #expect(try row.double(4) == 2.5)
        #expect(try row.double(5).isNaN)
        #expect(try row.double(6) == -.infinity)
        #expect(try row.bool(7) == true)
        #expect(try row.bool(8) == false)
    }

    @Test("a NULL where a value is required throws, naming the column and the query", arguments: TestServers.versions)
    func nullRequired(major: Int) throws {
        let conn = try TestServers.database(major).connect()
        let row = try conn.query("SELECT 1 AS id, NULL::bigint AS total_bytes").firstRow()
        let error = #expect(throws: PGError.self) { try row.int64(1) }
        #expect(error?.kind == .protocolViolation)
        #expect(error?.message.contains("NULL in column \"total_bytes\" (index 1)") == true)
        #expect(error?.context?.contains("SELECT 1 AS id, NULL::bigint AS total_bytes") == true)
        for read in [{ _ = try row.string(1) }, { _ = try row.int(1) }, { _ = try row.double(1) }, { _ = try row.bool(1) }] {
            #expect(throws: PGError.self) { try read() }
        }
    }

    @Test("optional accessors give nil for NULL and still reject text that does not parse", arguments: TestServers.versions)
    func optionals(major: Int) throws {
        let conn = try TestServers.database(major).connect()
        let row = try conn.query("SELECT NULL::text, NULL::int, NULL::float8, NULL::bool, '7'::text, 'seven'::text").firstRow()
        #expect(try row.optionalString(0) == nil)
        #expect(try row.optionalInt(1) == nil)
        #expect(try row.optionalInt64(1) == nil)
        #expect(try row.optionalDouble(2) == nil)
        #expect(try row.optionalBool(3) == nil)
        #expect(try row.optionalString(4) == "7")
        #expect(try row.optionalInt64(4) == 7)
        let bad = #expect(throws: PGError.self) { try row.optionalInt64(5) }
        #expect(bad?.message.contains("\"seven\"") == true)
        #expect(bad?.message.contains("not a bigint") == true)
    }

    @Test("text that does not parse as the type throws instead of becoming 0", arguments: [
        "SELECT 'abc'::text AS n", "SELECT ''::text AS n", "SELECT '12.5'::text AS n", "SELECT '99999999999999999999'::text AS n",
    ])
    func badIntegers(sql: String) throws {
        let row = try TestServers.database().connect().query(sql).firstRow()
        let error = #expect(throws: PGError.self) { try row.int64(0) }
        #expect(error?.message.contains("in column \"n\" (index 0), which is not a bigint") == true)
    }

    @Test("booleans are PostgreSQL's t and f, nothing else", arguments: ["true", "1", "yes", "T", ""])
    func badBooleans(text: String) throws {
        let row = try TestServers.database().connect().query("SELECT $1::text AS flag", [text]).firstRow()
        let error = #expect(throws: PGError.self) { try row.bool(0) }
        #expect(error?.message.contains("column \"flag\"") == true)
    }

    @Test("a missing column or an empty result throws instead of crashing")
    func shapeErrors() throws {
        let conn = try TestServers.database().connect()
        let row = try conn.query("SELECT 1 AS only").firstRow()
        let missing = #expect(throws: PGError.self) { try row.string(3) }
        #expect(missing?.message.contains("has no column index 3; it has 1 column(s)") == true)
        let empty = #expect(throws: PGError.self) { try conn.query("SELECT 1 WHERE false").firstRow() }
        #expect(empty?.message.contains("no rows") == true)
        #expect(empty?.context == "SELECT 1 WHERE false")
    }
}
