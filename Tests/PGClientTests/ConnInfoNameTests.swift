import Foundation
import PGClient
import Testing

/// The database a conninfo names, known before connecting (failure reports of
/// a run that stopped early): libpq's own order of defaults.
@Suite("ConnInfo.databaseName")
struct ConnInfoNameTests {
    @Test("dbname, a URI's path, PGDATABASE, then the user (given, PGUSER)", arguments: [
        ("dbname=tiny host=/tmp", [:], "tiny"),
        ("postgresql://backup:pw@db1:5433/chat?sslmode=disable", ["PGDATABASE": "other"], "chat"),
        ("host=/tmp", ["PGDATABASE": "fromenv", "PGUSER": "u"], "fromenv"),
        ("host=/tmp user=bob", [:], "bob"),
        ("", ["PGUSER": "carol"], "carol"),
        ("postgresql://dave@db1", [:], "dave"),
    ] as [(String, [String: String], String)])
    func name(conninfo: String, environment: [String: String], expected: String) {
        #expect(ConnInfo.databaseName(conninfo, environment: environment) == expected)
    }

    @Test("with nothing given, the login name, as libpq does; never 'unknown' for a real user")
    func loginName() throws {
        let login = try #require(getpwuid(geteuid())?.pointee.pw_name)
        #expect(ConnInfo.databaseName("", environment: [:]) == String(cString: login))
    }
}
