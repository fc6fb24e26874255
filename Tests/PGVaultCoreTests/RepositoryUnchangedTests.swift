import Foundation
import PGClient
@testable import PGVaultCore
import Testing
import TestSupport

/// Unchanged units: a backup into a repository takes the units whose
/// fingerprints equal the previous backup's from it, unread. Every kind of
/// change a fingerprint must see is made, and the restore of the last backup
/// (units read three backups apart) must equal the source, table by table.
@Suite("repository: unchanged units are not read again")
struct RepositoryUnchangedTests {
    typealias Fixture = RepositoryFormatTests

    /// The tables (schema.table) of the newest backup's units that were read,
    /// not taken: their fingerprints are not in the previous backup's.
    static func read(_ repo: String, _ keys: Fixture.Keys) throws -> Set<String> {
        let repository = try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile))
        let catalogs = try Snapshots.catalogs(repository).map(\.catalog)
        try #require(catalogs.count >= 2)
        let before = Set((catalogs[1].fingerprinted ?? []).compactMap(\.fingerprint))
        return Set((catalogs[0].fingerprinted ?? []).filter { !before.contains($0.fingerprint ?? "") }.map(\.qualifiedTable))
    }

    @Test("unchanged tables are taken unread; an update, a delete with an insert, a truncate and an added column are each seen, a renamed enum label makes every unit read; the restores equal the source", arguments: TestServers.versions)
    func changesAreSeen(major: Int) async throws {
        let db = try await BackupTests.chatDatabase(major)
        let conn = try db.connect()
        // A table of its own with an enum: a renamed label changes COPY's
        // output without touching a row.
        try conn.execute("""
            CREATE TYPE probe_mood AS ENUM ('happy', 'sad');
            CREATE TABLE probe (id int PRIMARY KEY, mood probe_mood, note text);
            INSERT INTO probe SELECT g, CASE WHEN g % 2 = 0 THEN 'happy' ELSE 'sad' END::probe_mood, 'row ' || g FROM generate_series(1, 500) g;
            CREATE TABLE probe_plain (id int PRIMARY KEY, note text);
            INSERT INTO probe_plain SELECT g, 'row ' || g FROM generate_series(1, 500) g;
            """)
        let keys = try Fixture.keys("unchanged\(major)")
        let repo = try Fixture.encryptedRepository("unchanged\(major)", keys)

        let first = try Fixture.backup(db, repo, keys, ["--split-size", "1"])
        #expect(first["unitsUnchanged"] as? Int == 0)
        let units = try #require(first["units"] as? Int)

        let second = try Fixture.backup(db, repo, keys, ["--split-size", "1"])
        #expect(second["unitsUnchanged"] as? Int == units, "\(second)")
        #expect(try Self.read(repo, keys).isEmpty)
        let secondCatalog = try Fixture.newestCatalog(repo, keys)
        #expect(secondCatalog.newChunks == 0 && secondCatalog.addedBytes == 0)

        let newest = try #require(try conn.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'public.messages'::regclass AND c.relname <> 'messages_default'
            ORDER BY c.relname DESC LIMIT 1
            """).scalar)
        let audit = try #require(try conn.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'public.audit_logs'::regclass AND EXISTS (SELECT 1 FROM audit_logs a WHERE a.tableoid = c.oid)
            ORDER BY c.relname LIMIT 1
            """).scalar)
        try conn.execute("""
            UPDATE \(SQL.ident(newest)) SET content = content || ' (edited)' WHERE id = (SELECT min(id) FROM \(SQL.ident(newest)));
            -- One row out, one row in: the count is the same.
            WITH gone AS (DELETE FROM \(SQL.ident(audit)) WHERE id = (SELECT min(id) FROM \(SQL.ident(audit))) RETURNING *)
            INSERT INTO audit_logs SELECT * FROM gone;
            -- The same rows, written again.
            CREATE TEMPORARY TABLE saved AS SELECT * FROM probe_plain;
            TRUNCATE probe_plain;
            INSERT INTO probe_plain SELECT * FROM saved;
            ALTER TABLE invites ADD COLUMN note text DEFAULT 'added later';
            """)
        let third = try Fixture.backup(db, repo, keys, ["--split-size", "1"])
        let read = try Self.read(repo, keys)
        for changed in ["public.\(newest)", "public.\(audit)", "public.probe_plain", "public.invites"] {
            #expect(read.contains(changed), "\(changed) changed but was not read; read: \(read.sorted())")
        }
        let taken = try #require(third["unitsUnchanged"] as? Int)
        #expect(taken > 0 && taken <= units - 4, "\(third)")
        #expect(!read.contains("public.probe") && !read.contains("public.users"), "\(read.sorted())")

        // The restore holds every change and every unit taken unread.
        let target = try db.sibling(prefix: "unch")
        let restored = try Fixture.pgvault(["restore", "--repo", repo, "--backup", "latest", "--identity", keys.identity, "-d", target.conninfo, "--quiet", "--json"])
        #expect(restored.status == 0, "\(restored.stderr)")
        try RestoreFixtures.expectSameTables(conn, try target.connect())
        let checked = try Fixture.pgvault(["check", "--repo", repo, "--read-data", "--identity", keys.identity, "--json"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        // A renamed enum label changes COPY's output of every table that uses
        // the type, and no row: every unit is read again (the fingerprint
        // holds every enum's labels, whichever table uses them).
        try conn.execute("ALTER TYPE probe_mood RENAME VALUE 'happy' TO 'glad'")
        let renamed = try Fixture.backup(db, repo, keys, ["--split-size", "1"])
        #expect(renamed["unitsUnchanged"] as? Int == 0, "\(renamed)")
        let again = try db.sibling(prefix: "unche")
        let restoredAgain = try Fixture.pgvault(["restore", "--repo", repo, "--backup", "latest", "--identity", keys.identity, "-d", again.conninfo, "--quiet", "--json"])
        #expect(restoredAgain.status == 0, "\(restoredAgain.stderr)")
        #expect(try again.connect().query("SELECT count(*) FROM probe WHERE mood = 'glad'").scalar == "250")

        // --read-unchanged reads everything, and still stores nothing new.
        let full = try Fixture.backup(db, repo, keys, ["--split-size", "1", "--read-unchanged"])
        #expect(full["unitsUnchanged"] as? Int == 0)
        #expect(try Fixture.newestCatalog(repo, keys).newChunks == 0)
    }

    @Test("a --schema-only backup in between hides nothing: the backup after it takes every unit from the full one before")
    func schemaOnlyBetween() async throws {
        let db = try await BackupTests.chatDatabase(TestServers.newest)
        let keys = try Fixture.keys("unchanged-schema")
        let repo = try Fixture.encryptedRepository("unchanged-schema", keys)
        let full = try Fixture.backup(db, repo, keys)
        _ = try Fixture.backup(db, repo, keys, ["--schema-only"])
        let after = try Fixture.backup(db, repo, keys)
        #expect(after["unitsUnchanged"] as? Int == full["units"] as? Int, "\(after)")
    }

    @Test("a database restored under the same name is another database: nothing is taken from the backups of the one it replaced")
    func restoredCopyReadsEverything() async throws {
        let db = try await BackupTests.chatDatabase(TestServers.newest)
        let keys = try Fixture.keys("unchanged-dr")
        let repo = try Fixture.encryptedRepository("unchanged-dr", keys)
        _ = try Fixture.backup(db, repo, keys)

        // A DR: the database is restored from the backup, then takes the old name.
        let target = try db.sibling(prefix: "unchdr")
        let restored = try Fixture.pgvault(["restore", "--repo", repo, "--backup", "latest", "--identity", keys.identity, "-d", target.conninfo, "--quiet"])
        try #require(restored.status == 0, "\(restored.stderr)")
        let name = try #require(try db.connect().query("SELECT current_database()").scalar)
        let targetName = try #require(try target.connect().query("SELECT current_database()").scalar)
        let admin = try PGConnection(conninfo: db.server.conninfo(database: "postgres"))
        try admin.execute("DROP DATABASE \(SQL.ident(name)) WITH (FORCE)")
        try admin.execute("ALTER DATABASE \(SQL.ident(targetName)) RENAME TO \(SQL.ident(name))")

        let after = try Fixture.backup(db, repo, keys)
        #expect(after["unitsUnchanged"] as? Int == 0, "\(after)")
        // Its data is the same: deduplicated all the same.
        #expect(try Fixture.newestCatalog(repo, keys).newChunks == 0)
    }
}
