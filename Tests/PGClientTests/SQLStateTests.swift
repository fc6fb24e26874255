import PGClient
import TestSupport
import Testing

@Suite("named SQLSTATEs")
struct SQLStateTests {
    /// Each constant pgvault reacts to, next to a statement that makes the server
    /// send it: a wrong code in PGError.swift would make a `catch ... where` miss.
    static let cases: [(setup: String, failing: String, code: String)] = [
        ("", "SELECT 'x'::int", PGError.invalidTextRepresentation),
        ("CREATE TABLE c (x int CHECK (x > 0))", "INSERT INTO c VALUES (-1)", PGError.checkViolation),
        ("CREATE TABLE a (id int); CREATE VIEW v AS SELECT id FROM a", "DROP TABLE a", PGError.dependentObjectsStillExist),
        ("", "SELECT no_such_function()", PGError.undefinedFunction),
        ("", "SELECT 'no_such_type'::regtype", PGError.undefinedObject),
        ("", "SELECT * FROM no_such_table", PGError.undefinedTable),
        ("CREATE TABLE p (x int) PARTITION BY RANGE (x); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (10)",
         "CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (5) TO (15)", PGError.invalidObjectDefinition),
        ("DROP ROLE IF EXISTS sqlstate_nobody; CREATE ROLE sqlstate_nobody; CREATE TABLE secret (x int)",
         "SET ROLE sqlstate_nobody; SELECT * FROM secret", PGError.insufficientPrivilege),
    ]

    @Test("each named constant is the code the server sends", arguments: cases)
    func serverSendsNamedCode(setup: String, failing: String, code: String) throws {
        let conn = try TestServers.database().connect()
        if !setup.isEmpty { try conn.execute(setup) }
        let error = #expect(throws: PGError.self) { try conn.execute(failing) }
        #expect(error?.sqlState == code, "\(failing)")
        if setup.contains("CREATE ROLE") {
            // A role is cluster-wide: leave none behind for other tests.
            try conn.execute("RESET ROLE; DROP ROLE sqlstate_nobody")
        }
    }
}
