import Foundation
import PGClient
@testable import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

/// Decoded rows of every unit of a table in an archive.
func archivedRows(_ path: String, schema: String, table: String) throws -> [String] {
    let source = try Archive.open(path)
    let manifest = try Archive.manifest(of: source)
    var rows: [String] = []
    for unit in manifest.units where unit.schema == schema && unit.table == table {
        // Binary tuples are shown as text the way failure samples show them.
        let types = unit.columns.map { name in manifest.table(schema: schema, name: table)?.columns.first { $0.name == name }?.type ?? "" }
        var splitter = RowSplitter(unit.format)
        try Archive.streamUnit(unit, from: source) { chunk in
            try splitter.feed(chunk) { row in
                guard unit.format == .binary else { return rows.append(String(decoding: row, as: UTF8.self)) }
                rows.append(BinaryCopy.fields(row).enumerated().map { BinaryCopy.display($1, type: types[$0]) ?? "\\N" }.joined(separator: "\t"))
            }
        }
        #expect(splitter.incomplete == nil)
    }
    return rows
}

@Suite("backup")
struct BackupTests {
    /// The chat schema filled by the synthetic generator (tiny scale: every monthly
    /// partition and the DEFAULT ones, hostile text), plus one user whose bio holds
    /// every character COPY text must escape.
    static func chatDatabase(_ major: Int) async throws -> TestDatabase {
        let db = try TestServers.database(major)
        try await Blocking.run("generate") {
            let conn = try db.connect()
            try Migrator(directory: RepoPaths.migrations).run(conn)
            _ = try DataGenerator(config: try GeneratorConfig.scale("tiny")).run(conninfo: db.conninfo)
            try conn.execute("""
                INSERT INTO users (id, username, discriminator, email, password_hash, bio)
                VALUES (9000000000000000001, 'hostile_bio', '9999', 'hostile@example.com', 'x',
                        E'tab\\there\\nnew \\\\N back\\\\slash 😀');
                SELECT setval('snowflake_seq', 4242);
                """)
        }
        return db
    }

    @Test("manifest counts equal the server's on generated data; the archive is owner-only and complete", arguments: TestServers.matrix)
    func countsMatch(major: Int) async throws {
        let db = try await Self.chatDatabase(major)
        let out = try TestScratch.directory("backup") + "/archive"
        var options = BackupOptions(conninfo: db.conninfo, output: out)
        options.jobs = 2
        options.splitBytes = 64 << 10  // force ctid-range units for the bigger partitions
        options.binaryCopy = false  // COPY text, to see its escapes below (binary: BinaryCopyTests)
        let summary = try await BackupEngine.run(options)
        let manifest = try Archive.manifest(of: try Archive.open(out))
        #expect(manifest.units.allSatisfy { $0.format == .text } && manifest.copyFormat == "text")
        let conn = try db.connect()
        for table in manifest.tables where table.kind != "partitioned" {
            let count = try conn.query("SELECT count(*) FROM ONLY \(SQL.qualified(table.schema, table.name))").scalar
            #expect(String(table.rows) == count, "\(table.qualifiedName)")
        }
        #expect(manifest.units.contains { $0.fromPage != nil })  // split units exist
        #expect(manifest.tables.contains { $0.name == "messages" && $0.kind == "partitioned" && $0.partitioning?.keyColumns == ["created_at"] })
        #expect(manifest.tables.contains { $0.name == "messages_default" && $0.bound?.isDefault == true })
        let jan = try #require(manifest.tables.first { $0.name == "messages_2024_01" })
        #expect(jan.bound?.rangeFrom == ["2024-01-01 00:00:00+00"])
        let migrationCount = try Migrator(directory: RepoPaths.migrations).migrations.count
        #expect(manifest.migrations?.count == migrationCount)
        #expect(manifest.sequences.contains { $0.name == "snowflake_seq" && $0.lastValue == "4242" })
        #expect(manifest.server.versionNumber / 10000 == major)
        #expect(!manifest.snapshot.walLSN.isEmpty)
        #expect(manifest.schema?.pgDumpVersion.hasPrefix("\(major)") == true)
        #expect(summary.rows == manifest.units.reduce(0) { $0 + $1.rows })
        // Hostile text survived byte for byte (COPY text escapes).
        let rows = try archivedRows(out, schema: "public", table: "users")
        #expect(rows.contains { $0.contains("tab\\there\\nnew \\\\N back\\\\slash 😀") })
        // Owner-only.
        var st = stat()
        stat(out, &st)
        #expect(st.st_mode & 0o077 == 0)
        stat(out + "/manifest.json", &st)
        #expect(st.st_mode & 0o077 == 0)
        // Row digests recomputed from the server equal the manifest's.
        try CopySession.apply(conn)
        for unit in manifest.units where unit.fromPage == nil && unit.toPage == nil {
            let digest = try RowDigest.of(conn, "COPY \(SQL.qualified(unit.schema, unit.table)) (\(unit.columns.map(SQL.ident).joined(separator: ", "))) TO STDOUT", format: .text)
            #expect(digest.hex == unit.rowDigest && digest.rows == unit.rows, "\(unit.qualifiedTable)")
        }
    }

    @Test("a backup taken during concurrent writes is one point in time")
    func consistentUnderWrites() async throws {
        let db = try TestServers.database()
        let setup = try db.connect()
        try setup.execute("""
            CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL);
            INSERT INTO counter VALUES (1, 0);
            CREATE TABLE events (id bigserial PRIMARY KEY, payload text NOT NULL);
            CREATE TABLE ledger (k int PRIMARY KEY, v bigint NOT NULL);
            INSERT INTO ledger SELECT g, 100 FROM generate_series(1, 2000) g;
            INSERT INTO events (payload) SELECT repeat('x', 200) FROM generate_series(1, 20000);
            UPDATE counter SET n = 20000;
            """)
        let writer = Task.detached {
            let c = try db.connect()
            var i = 0
            while !Task.isCancelled && i < 100_000 {
                // Each transaction keeps two invariants: count(events) = counter.n, sum(ledger.v) = 200000.
                try c.execute("""
                    BEGIN;
                    INSERT INTO events (payload) VALUES ('w\(i)');
                    UPDATE counter SET n = n + 1;
                    UPDATE ledger SET v = v - 1 WHERE k = \(1 + i % 2000);
                    UPDATE ledger SET v = v + 1 WHERE k = \(1 + (i * 7 + 1) % 2000);
                    DELETE FROM events WHERE id = (SELECT min(id) FROM events);
                    UPDATE counter SET n = n - 1;
                    COMMIT;
                    """)
                i += 1
            }
            return i
        }
        try await Task.sleep(for: .milliseconds(300))
        let out = try TestScratch.directory("backup") + "/archive"
        var options = BackupOptions(conninfo: db.conninfo, output: out)
        options.jobs = 2
        options.splitBytes = 128 << 10
        _ = try await BackupEngine.run(options)
        writer.cancel()
        let writes = try await writer.value
        #expect(writes > 0)
        let counter = try archivedRows(out, schema: "public", table: "counter")
        let n = Int(counter[0].split(separator: "\t")[1])!
        #expect(try archivedRows(out, schema: "public", table: "events").count == n)
        let sum = try archivedRows(out, schema: "public", table: "ledger").reduce(0) { $0 + Int($1.split(separator: "\t")[1])! }
        #expect(sum == 200_000)
    }

    @Test("names that need quoting work; the single-file form and selection too")
    func quotingAndFileForm() async throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        try conn.execute("""
            CREATE SCHEMA "Ops";
            CREATE TABLE "Ops"."Job Runs" ("Select" text, "id" int PRIMARY KEY, "weird""col" int);
            INSERT INTO "Ops"."Job Runs" SELECT 'run ' || g, g, g FROM generate_series(1, 100) g;
            CREATE TABLE plain (id int);
            INSERT INTO plain VALUES (1);
            """)
        let dir = try TestScratch.directory("backup")
        var options = BackupOptions(conninfo: db.conninfo, output: dir + "/ops.tar", form: .file)
        options.tables = ["Ops.Job*"]
        let summary = try await BackupEngine.run(options)
        #expect(summary.units == 1)
        let manifest = try Archive.manifest(of: try Archive.open(dir + "/ops.tar"))
        #expect(manifest.tables.map(\.qualifiedName) == ["Ops.Job Runs"])
        #expect(manifest.units[0].columns == ["Select", "id", "weird\"col"])
        #expect(try archivedRows(dir + "/ops.tar", schema: "Ops", table: "Job Runs").count == 100)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(names == ["ops.tar"])  // no spool or partial left behind
        let missing = await #expect(throws: PGVaultError.self) {
            var o = BackupOptions(conninfo: db.conninfo, output: dir + "/x")
            o.tables = ["no_such_table"]
            _ = try await BackupEngine.run(o)
        }
        #expect(missing?.description.contains("no_such_table") == true)
        #expect(missing?.kind == .server)
    }

    @Test("a unit of several MiB is compressed on its own thread: the member holds exactly the server's COPY stream, binary and text")
    func largeUnit() async throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        try conn.execute("CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 4) AS t FROM generate_series(1, 60000) g")
        for binary in [true, false] {
            var options = BackupOptions(conninfo: db.conninfo, output: try TestScratch.directory("backup") + "/archive")
            options.binaryCopy = binary
            options.compressionLevel = 1
            let summary = try await BackupEngine.run(options)
            let unit = try #require(summary.manifest?.units.first { $0.table == "wide" })
            #expect(unit.format == (binary ? CopyFormat.binary : .text))
            #expect(unit.rows == 60000)
            #expect(unit.rawBytes > 4 << 20, "\(unit.rawBytes) bytes: too small for the compression thread")
            var expected: [UInt8] = []
            try conn.copyOut("COPY public.wide (id, t) TO STDOUT\(unit.format.options())") { expected.append(contentsOf: $0) }
            var archived: [UInt8] = []
            // Checks the member's size and SHA-256 against the manifest too.
            try Archive.streamUnit(unit, from: try Archive.open(options.output)) { archived.append(contentsOf: $0) }
            #expect(Int64(archived.count) == unit.rawBytes)
            #expect(archived == expected)
        }
    }

    @Test("an interrupted backup leaves nothing that looks complete")
    func interrupted() async throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        try conn.execute("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS t FROM generate_series(1, 400000) g")
        let dir = try TestScratch.directory("backup")
        let out = dir + "/archive"
        let task = Task {
            var options = BackupOptions(conninfo: db.conninfo, output: out)
            options.compressionLevel = 19  // slow enough to be interrupted
            return try await BackupEngine.run(options)
        }
        try await Task.sleep(for: .milliseconds(700))
        task.cancel()
        let result = await task.result
        guard case .failure = result else {
            Issue.record("backup was not interrupted; make the table bigger")
            return
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("two backups of one database never run at once; a lock that cannot be had fails clearly")
    func locking() async throws {
        let db = try TestServers.database()
        let holder = try db.connect()
        try holder.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        try holder.query("SELECT pg_advisory_lock(hashtext('pgvault-backup:' || current_database()))")
        let dir = try TestScratch.directory("backup")
        let busy = await #expect(throws: PGVaultError.self) {
            _ = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: dir + "/a"))
        }
        #expect(busy?.description.contains("another pgvault backup") == true)
        // The runbook's "at once" is 2 s: the message says how long it waited.
        #expect(busy?.description.contains("waited 2 s for it") == true, "\(String(describing: busy))")
        try holder.query("SELECT pg_advisory_unlock_all()")
        try holder.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        let locked = await #expect(throws: PGVaultError.self) {
            var o = BackupOptions(conninfo: db.conninfo, output: dir + "/b")
            o.lockWaitTimeout = "300ms"
            _ = try await BackupEngine.run(o)
        }
        #expect(locked?.description.contains("public.t") == true)
        #expect(locked?.description.contains("--lock-wait-timeout") == true)
        #expect(locked?.serverError?.sqlState == PGError.lockNotAvailable)
        try holder.execute("ROLLBACK")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("pg_dump older than the server is a clear error naming both versions",
          .enabled(if: TestServers.testing(15, 17), "needs PostgreSQL 15 and 17 in PGVAULT_TEST_VERSIONS"))
    func pgDumpVersion() async throws {
        let db = try TestServers.database(17)
        try db.connect().execute("CREATE TABLE t (id int)")
        var o = BackupOptions(conninfo: db.conninfo, output: try TestScratch.directory("backup") + "/a")
        o.pgBin = TestCluster.binDir(major: 15)
        let error = await #expect(throws: PGVaultError.self) { _ = try await BackupEngine.run(o) }
        #expect(error?.description.contains("15.") == true)
        #expect(error?.description.contains("17") == true)
    }

    @Test("a --pg-bin folder with pg_dump but no pg_restore is refused, naming pg_restore")
    func pgRestoreRequired() async throws {
        let major = TestServers.versions.contains(17) ? 17 : 15
        let db = try TestServers.database(major)
        try db.connect().execute("CREATE TABLE t (id int)")
        let bin = try TestScratch.directory("backup")
        try FileManager.default.createSymbolicLink(atPath: bin + "/pg_dump", withDestinationPath: TestCluster.binDir(major: major) + "/pg_dump")
        var o = BackupOptions(conninfo: db.conninfo, output: try TestScratch.directory("backup") + "/a")
        o.pgBin = bin
        let error = await #expect(throws: PGVaultError.self) { _ = try await BackupEngine.run(o) }
        #expect(error?.description.contains("pg_restore") == true)
        #expect(!FileManager.default.fileExists(atPath: o.output))
    }
}

@Suite("backup repository")
struct RepositoryTests {
    func entry(_ name: String, _ date: String) -> Repository.Entry {
        Repository.Entry(name: name, path: "/x/" + name, status: "complete", startedAt: date, bytes: 1)
    }

    @Test("prune keeps exactly what the policy says")
    func retention() throws {
        var entries: [Repository.Entry] = []
        // Two backups a day for 60 days, from 2026-01-01.
        for day in 0..<60 {
            for hour in [1, 13] {
                let date = Date(timeIntervalSince1970: 1_767_225_600 + Double(day * 86400 + hour * 3600))
                entries.append(entry("db-\(day)-\(hour)", ISO8601.format(date)))
            }
        }
        entries.append(Repository.Entry(name: ".db-x.partial-1", path: "/x", status: "incomplete", bytes: 1))
        let plan = Repository.plan(entries, policy: .init(daily: 3, weekly: 2, monthly: 2))
        let kept = Set(plan.filter(\.keep).map(\.name))
        // daily: newest of the last 3 days (days 59, 58, 57 at 13:00);
        // weekly: newest of the last 2 ISO weeks (2026-W09: day 59 = Sat 2026-03-01; W08: day 52 = Sun 2026-02-22)
        // monthly: newest of March (day 59) and February (day 58 = 2026-02-28).
        #expect(kept == ["db-59-13", "db-58-13", "db-57-13", "db-52-13"])
        #expect(plan.count == 120)  // the incomplete one is not considered
        #expect(plan.first { $0.name == "db-59-13" }?.reasons.first == "newest complete backup")
        // Keeping nothing still keeps the newest complete backup.
        let none = Repository.plan(entries, policy: .init(daily: 0, weekly: 0, monthly: 0))
        #expect(none.filter(\.keep).map(\.name) == ["db-59-13"])
    }

    @Test("a real repository: backups named by database and time, listed, pruned")
    func realRepository() async throws {
        let db = try TestServers.database()
        try db.connect().execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
        let repo = try Repository(path: try TestScratch.directory("repo"))
        var names: [String] = []
        for i in 0..<3 {
            let path = repo.newBackupPath(database: "db", at: Date(timeIntervalSince1970: 1_767_225_600 + Double(i) * 86400 * 40))
            _ = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: path))
            names.append((path as NSString).lastPathComponent)
        }
        try FileManager.default.createDirectory(atPath: repo.path + "/.db-20260101T000000Z.partial-999999", withIntermediateDirectories: false)
        let entries = try repo.entries()
        #expect(entries.filter { $0.status == "complete" }.count == 3)
        #expect(entries.filter { $0.status == "incomplete" }.count == 1)
        #expect(entries.allSatisfy { $0.status == "incomplete" || $0.rows == 10 })
        // All three were taken just now (startedAt is the real time), so a policy of one
        // daily keeps exactly the newest; the others go.
        let decisions = try repo.prune(policy: .init(daily: 1, weekly: 0, monthly: 0), dryRun: false)
        #expect(decisions.filter(\.keep).count == 1)
        #expect(try repo.entries().filter { $0.status == "complete" }.count == 1)
    }
}
