import CryptoDigest
import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

@Suite("sqlx-compatible migrations")
struct MigrationTests {
    let migrator: Migrator

    init() throws { migrator = try Migrator(directory: RepoPaths.migrations) }

    @Test("files resolve as sqlx resolves them")
    func resolution() throws {
        #expect(migrator.migrations.count >= 10)
        let first = try #require(migrator.migrations.first)
        #expect(first.version == 20250101000000)
        #expect(first.description == "create extensions")
        #expect(first.checksum.count == 48)  // SHA-384
        #expect(migrator.migrations.allSatisfy { $0.downSQL != nil })
        #expect(migrator.migrations.map(\.version) == migrator.migrations.map(\.version).sorted())
        // sqlx's advisory lock id: 0x3d32ad9e * crc32("postgres") (crc32 = 0x0b4c4a25 ... computed independently)
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(Migrator.lockID(database: "postgres") == 0x3d32_ad9e * Int64(CRC32.checksum(Array("postgres".utf8))))
    }

    @Test("apply all, revert all, apply again", arguments: TestServers.matrix)
    func upDownUp(major: Int) throws {
        let db = try TestServers.database(major)
        let conn = try db.connect()
        let ran = try migrator.run(conn)
        #expect(ran.count == migrator.migrations.count)
        #expect(try migrator.run(conn).isEmpty)  // idempotent

        // Recorded exactly like sqlx: version, description, success, SHA-384 checksum.
        let rows = try Migrator.applied(conn)
        #expect(rows.map(\.version) == migrator.migrations.map(\.version))
        #expect(rows.map(\.description) == migrator.migrations.map(\.description))
        #expect(rows.allSatisfy { $0.success })
        #expect(rows.map(\.checksum) == migrator.migrations.map(\.checksum))
        let sha = try conn.query("SELECT encode(checksum, 'hex'), execution_time > 0 FROM _sqlx_migrations ORDER BY version LIMIT 1")
        #expect(sha.rows[0][0] == Hex.encode(migrator.migrations[0].checksum))
        #expect(sha.rows[0][1] == "t")

        // The partitioned tables have monthly partitions and a DEFAULT partition.
        let parts = try conn.query("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'messages'::regclass ORDER BY 1
            """)
        #expect(parts.rows.count >= 13)
        #expect(parts.rows.contains { $0[1] == "DEFAULT" })
        let auditDefault = try conn.query("""
            SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_logs'::regclass AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
            """)
        #expect(auditDefault.scalar == "1")

        // Down, one at a time, to nothing of ours.
        var reverted = 0
        while try migrator.revertLast(conn) != nil { reverted += 1 }
        #expect(reverted == migrator.migrations.count)
        let left = try conn.query("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relname <> '_sqlx_migrations' AND c.relname NOT LIKE '_sqlx_migrations%'
            """)
        #expect(left.scalar == "0")
        let functions = try conn.query("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'")
        #expect(functions.scalar == "0")
        #expect(try migrator.run(conn).count == migrator.migrations.count)
    }

    @Test("a changed migration file or a dirty row is refused as sqlx refuses it")
    func validation() throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        try migrator.run(conn)
        var edited = migrator.migrations
        let m = edited[1]
        edited[1] = Migration(
            version: m.version, description: m.description, upSQL: m.upSQL + "\n-- edited", downSQL: m.downSQL,
            checksum: try SHA2.hexBytes(m.upSQL + "\n-- edited"), noTransaction: false, fileName: m.fileName)
        let changed = #expect(throws: PGVaultError.self) { try Migrator(migrations: edited).run(conn) }
        #expect(changed?.kind == .verification)
        #expect(changed?.description.contains("has changed") == true)
        try conn.execute("UPDATE _sqlx_migrations SET success = false WHERE version = \(m.version)")
        let dirty = #expect(throws: PGVaultError.self) { try migrator.run(conn) }
        #expect(dirty?.kind == .verification)
        #expect(dirty?.description.contains("partially applied") == true)
    }

    @Test("a failing migration rolls back and records nothing")
    func failingMigration() throws {
        let conn = try TestServers.database().connect()
        let bad = Migration(
            version: 1, description: "bad", upSQL: "CREATE TABLE ok_one (id int); SELECT 1/0;", downSQL: nil,
            checksum: try SHA2.hexBytes("x"), noTransaction: false, fileName: "1_bad.up.sql")
        let error = #expect(throws: PGVaultError.self) { try Migrator(migrations: [bad]).run(conn) }
        #expect(error?.kind == .server)
        #expect(error?.serverError != nil)  // the PGError is kept, with its SQLSTATE
        #expect(error?.description.contains("1_bad.up.sql") == true)
        #expect(error?.description.contains("division by zero") == true)
        #expect(try conn.query("SELECT to_regclass('ok_one') IS NULL").scalar == "t")
        #expect(try Migrator.applied(conn).isEmpty)
    }
}

extension SHA2 {
    static func hexBytes(_ text: String) throws -> [UInt8] {
        let d = try SHA2(.sha384)
        try d.update(text)
        return try d.finalize()
    }
}
