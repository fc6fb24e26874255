import Foundation
import PGClient

extension Verifier {
    /// A verification connection: read-only, COPY session settings, enough
    /// work_mem for hash anti-joins, no statement timeout.
    static func connect(_ conninfo: String) throws -> PGConnection {
        let conn = try PGConnection(conninfo: conninfo, applicationName: "pgvault verify")
        try configure(conn)
        return conn
    }

    /// ``connect(_:)``'s settings, for a connection made elsewhere (a worker's).
    static func configure(_ conn: PGConnection) throws {
        try CopySession.apply(conn)
        try conn.execute("""
            SET default_transaction_read_only = on; SET statement_timeout = 0; \
            SET work_mem = '64MB'; SET lock_timeout = '60s'
            """)
    }
}
