import Foundation
import PGClient
@testable import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `swift test --filter RestoreTests` runs both suites.
@Suite("restore")
struct RestoreTests {}

// MARK: - Pure logic

extension RestoreTests {
@Suite("restore: schema scripts, windows, selection, planning")
struct Planning {
    @Test("pg_dump's post-data of the chat schema splits into objects, phases and tables")
    func postDataSplitting() throws {
        let db = try TestServers.database(TestServers.newest)
        try Migrator(directory: RepoPaths.migrations).run(try db.connect())
        let text = try RestoreFixtures.pgDump(db, section: "post-data")
        let script = try SchemaScript.parse(text)

        let headers = text.split(separator: "\n").filter { $0.hasPrefix("-- Name: ") }
        #expect(script.objects.count == headers.count)
        #expect(script.objects.map(\.index) == Array(0..<script.objects.count))
        #expect(!script.objects.contains { $0.sql.contains("\\restrict") || $0.sql.contains("\\unrestrict") || $0.sql.hasPrefix("--") })
        #expect(script.preamble.contains("SELECT pg_catalog.set_config('search_path', '', false);"))
        #expect(script.objects.allSatisfy { $0.tablespace == "''" })

        let byPhase = Dictionary(grouping: script.objects, by: SchemaScript.Phase.of)
        #expect(byPhase[.keys]?.count == headers.filter { $0.contains("; Type: CONSTRAINT;") }.count)
        #expect(byPhase[.indexes]?.count == headers.filter { $0.contains("; Type: INDEX;") }.count)
        #expect(byPhase[.attach]?.count == headers.filter { $0.contains("; Type: INDEX ATTACH;") }.count)
        #expect(byPhase[.foreignKeys]?.count == headers.filter { $0.contains("; Type: FK CONSTRAINT;") }.count)
        #expect(byPhase[.rest]?.contains { $0.type == "TRIGGER" } == true)
        let fk = try #require(script.objects.first { $0.name == "messages messages_fk_channel" })
        #expect(fk.type == "FK CONSTRAINT" && fk.schema == "public")
        #expect(fk.sql.hasPrefix("ALTER TABLE public.messages") && fk.sql.hasSuffix("ON DELETE CASCADE;"))
        let pkey = try #require(script.objects.first { $0.name == "messages_2025_01 messages_2025_01_pkey" })
        #expect(SchemaScript.tableOf(pkey) == "public.messages_2025_01")
        let index = try #require(script.objects.first { $0.name == "idx_messages_author" })
        #expect(SchemaScript.tableOf(index) == "public.messages")
        #expect(SchemaScript.dumpName("public", "messages") == "public.messages")
        #expect(SchemaScript.dumpName("Ops", "Job Runs") == "\"Ops\".\"Job Runs\"")

        // Pre-data: --clean's drops name every function with its argument types.
        let pre = try SchemaScript.parse(try RestoreFixtures.pgDump(db, section: "pre-data"))
        let drops = pre.dropStatements().map(\.sql)
        #expect(drops.contains("DROP FUNCTION IF EXISTS \"public\".\"create_monthly_partition\"(text, date) CASCADE"))
        #expect(drops.contains("DROP TABLE IF EXISTS \"public\".\"messages\" CASCADE"))
        #expect(drops.contains("DROP EXTENSION IF EXISTS \"pg_trgm\" CASCADE"))
        #expect(!pre.objects.contains { $0.type == "TABLE ATTACH" && !$0.sql.contains("ATTACH PARTITION") })
    }

    @Test("tablespace settings move to the objects they apply to; meta-commands are refused")
    func scriptState() throws {
        let text = """
            \\restrict abc123
            SET statement_timeout = 0;
            SELECT pg_catalog.set_config('search_path', '', false);

            SET default_tablespace = '';

            --
            -- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: app
            --

            ALTER TABLE ONLY public.t
                ADD CONSTRAINT t_pkey PRIMARY KEY (id);


            SET default_tablespace = fast;

            --
            -- Name: t_idx; Type: INDEX; Schema: public; Owner: app; Tablespace: fast
            --

            CREATE INDEX t_idx ON public.t USING btree (x);
            ALTER INDEX public.t_idx OWNER TO app;


            --
            -- PostgreSQL database dump complete
            --

            \\unrestrict abc123
            """
        let script = try SchemaScript.parse(text)
        #expect(script.preamble == ["SET statement_timeout = 0;", "SELECT pg_catalog.set_config('search_path', '', false);"])
        #expect(script.objects.count == 2)
        #expect(script.objects[0].tablespace == "''")
        #expect(script.objects[0].sql == "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);")
        #expect(script.objects[1].tablespace == "fast")
        #expect(SchemaScript.sql(of: script.objects[1]).hasPrefix("SET LOCAL default_tablespace = fast;\nCREATE INDEX"))
        #expect(script.objects.compactMap { SchemaScript.filter($0, noOwner: true, noPrivileges: true) }[1].sql == "CREATE INDEX t_idx ON public.t USING btree (x);")
        #expect(throws: PGVaultError.self) { try SchemaScript.parse("\\connect chat\nSELECT 1;") }
    }

    @Test("time windows pick the range partitions that overlap them")
    func windows() throws {
        #expect(TimePoint.parse("1970-01-02") == 86400)
        #expect(TimePoint.parse("2025-01-01 00:00:00+00") == TimePoint.parse("2025-01-01T00:00:00Z"))
        #expect(TimePoint.parse("2025-01-01 02:00:00+02") == TimePoint.parse("2025-01-01"))
        #expect(TimePoint.parse("2025-01-01 00:00:00.5+00")! - TimePoint.parse("2025-01-01")! == 0.5)
        #expect(TimePoint.parse("MINVALUE") == -.infinity && TimePoint.parse("infinity") == .infinity)
        #expect(TimePoint.parse("42") == nil && TimePoint.parse("2025-13-01") == nil && TimePoint.parse("2025-01-01 junk") == nil)

        let w = try TimeWindow(since: "2025-03-01", until: "2025-06-01")
        func month(_ from: String, _ to: String) -> Bool? { w.overlaps(from: ["\(from) 00:00:00+00"], to: ["\(to) 00:00:00+00"]) }
        #expect(month("2025-02-01", "2025-03-01") == false)  // ends where the window starts
        #expect(month("2025-03-01", "2025-04-01") == true)
        #expect(month("2025-05-01", "2025-06-01") == true)
        #expect(month("2025-06-01", "2025-07-01") == false)  // starts where the window ends
        #expect(w.overlaps(from: ["MINVALUE"], to: ["2025-03-02"]) == true)
        #expect(w.overlaps(from: ["2026-01-01"], to: ["MAXVALUE"]) == false)
        #expect(w.overlaps(from: ["0"], to: ["100"]) == nil)
        // Multi-column key: a row (2025-03-01, 1) may sort below the upper bound (2025-03-01, 5).
        #expect(w.overlaps(from: ["2025-02-01", "0"], to: ["2025-03-01", "5"]) == true)
        #expect(try TimeWindow(since: "2025-01-01", until: nil).overlaps(from: ["2024-12-01"], to: ["2025-01-01"]) == false)
        let empty = #expect(throws: PGVaultError.self) { try TimeWindow(since: "2025-06-01", until: "2025-01-01") }
        #expect(empty?.kind == .usage && empty?.message.contains("the window is empty") == true, "\(String(describing: empty))")
        let unreadable = #expect(throws: PGVaultError.self) { try TimeWindow(since: "yesterday", until: nil) }
        #expect(unreadable?.kind == .usage && unreadable?.message.contains("--since 'yesterday'") == true)
    }

    @Test("--table, --exclude-table and the window select archived tables; DEFAULT partitions need --include-default")
    func selection() throws {
        let m = RestoreFixtures.syntheticManifest()
        func names(_ tables: [String] = [], _ exclude: [String] = [], _ window: TimeWindow = TimeWindow(), _ includeDefault: Bool = false) throws -> [String] {
            try LoadPlan.select(m, tables: tables, exclude: exclude, window: window, includeDefault: includeDefault).map(\.name).sorted()
        }
        #expect(try names() == ["ev_2025_01", "ev_2025_02", "ev_2025_03", "ev_default", "users"])
        #expect(try names(["events"]) == ["ev_2025_01", "ev_2025_02", "ev_2025_03", "ev_default"])
        #expect(try names(["public.ev_2025_0?"]) == ["ev_2025_01", "ev_2025_02", "ev_2025_03"])
        #expect(try names([], ["events"]) == ["users"])
        #expect(try names(["*"], ["*default"]) == ["ev_2025_01", "ev_2025_02", "ev_2025_03", "users"])
        let feb = try TimeWindow(since: "2025-02-10", until: "2025-03-01")
        #expect(try names([], [], feb) == ["ev_2025_02", "users"])
        #expect(try names([], [], feb, true) == ["ev_2025_02", "ev_default", "users"])
        let unknown = #expect(throws: PGVaultError.self) { try names(["nosuch"]) }
        #expect(unknown?.kind == .archive && unknown?.message.contains("--table 'nosuch' matches no table") == true, "\(String(describing: unknown))")
    }

    @Test("partitions are matched by bounds, created when missing, routed when partitioned differently")
    func planning() throws {
        let m = RestoreFixtures.syntheticManifest()
        let all = try LoadPlan.select(m, tables: [], exclude: [], window: TimeWindow(), includeDefault: false)
        let users = m.tables[0], events = m.tables[1]

        // Same partitions under other names: matched by bound; each unit alone → FREEZE.
        var renamed = m.tables.map { t -> Manifest.Table in
            var t = t
            if t.kind == "partition" { t.name = "x_" + t.name }
            return t
        }
        var plan = LoadPlan.make(manifest: m, selected: all, target: .init(tables: renamed), dataOnly: true, createPartitions: true)
        #expect(plan.differences.isEmpty && plan.creations.isEmpty)
        #expect(Set(plan.loads.map(\.name)) == ["users", "x_ev_2025_01", "x_ev_2025_02", "x_ev_2025_03", "x_ev_default"])
        #expect(plan.loads.allSatisfy { !$0.routed })
        #expect(plan.loads.filter(\.freeze).map(\.name).sorted() == ["x_ev_2025_01", "x_ev_2025_02", "x_ev_default"])  // users and 03 are split

        // A missing partition is created (under a fresh name when its own is taken), and then matched.
        renamed.removeAll { $0.name == "x_ev_2025_02" }
        plan = LoadPlan.make(manifest: m, selected: all, target: .init(tables: renamed, relationNames: ["public.ev_2025_02"]), dataOnly: true, createPartitions: true)
        #expect(plan.creations == [LoadPlan.Creation(
            archived: "public.ev_2025_02", schema: "public", name: "ev_2025_02_restored", parentSchema: "public", parentName: "events",
            bound: "FOR VALUES FROM ('2025-02-01 00:00:00+00') TO ('2025-03-01 00:00:00+00')", partitionBy: nil)])
        #expect(plan.creations[0].sql == "CREATE TABLE \"public\".\"ev_2025_02_restored\" PARTITION OF \"public\".\"events\" FOR VALUES FROM ('2025-02-01 00:00:00+00') TO ('2025-03-01 00:00:00+00')")
        #expect(!plan.loads.contains { $0.archived.name == "ev_2025_02" })

        // Without creation, its rows go through the parent; the DEFAULT partition is
        // then loaded directly (every target partition has an archived twin) but
        // nothing that shares a routed parent is frozen.
        plan = LoadPlan.make(manifest: m, selected: all, target: .init(tables: renamed), dataOnly: true, createPartitions: false)
        let routed = try #require(plan.loads.first { $0.archived.name == "ev_2025_02" })
        #expect(routed.routed && routed.destination == "public.events" && !routed.freeze)
        #expect(routed.defaultPartitions.map(\.qualified) == ["public.x_ev_default"])
        #expect(plan.loads.first { $0.archived.name == "ev_default" }?.destination == "public.x_ev_default")
        #expect(!plan.loads.contains { $0.freeze && $0.schema == "public" && $0.name.hasPrefix("x_ev") })
        #expect(plan.routedParents == ["public.events"])

        // Partitioned by another key: everything routed, the DEFAULT partition included.
        var otherKey = [users, events]
        otherKey[1].partitioning = Manifest.Partitioning(strategy: "range", keyDefinition: "RANGE (id)", keyColumns: ["id"])
        plan = LoadPlan.make(manifest: m, selected: all, target: .init(tables: otherKey), dataOnly: true, createPartitions: true)
        #expect(plan.creations.isEmpty)
        #expect(plan.loads.filter { $0.archived.name.hasPrefix("ev_") }.allSatisfy { $0.routed && $0.destination == "public.events" })

        // An extra target partition the archive lacks: DEFAULT rows might belong there, so they are routed.
        var extra = m.tables
        var jan24 = m.tables[2]
        jan24.name = "ev_2024_01"
        jan24.bound = Catalog.parseBound("FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')")
        extra.append(jan24)
        plan = LoadPlan.make(manifest: m, selected: all, target: .init(tables: extra), dataOnly: true, createPartitions: true)
        #expect(plan.loads.first { $0.archived.name == "ev_default" }?.routed == true)

        // Column differences are listed, all of them, and nothing is planned past them.
        var changed = m.tables
        changed[0].columns = [
            Manifest.Column(name: "id", type: "integer", notNull: true, generated: false),
            Manifest.Column(name: "nick", type: "text", notNull: true, generated: false),
        ]
        changed.removeAll { $0.name == "events" || $0.parentName == "events" }
        plan = LoadPlan.make(manifest: m, selected: all, target: .init(tables: changed), dataOnly: true, createPartitions: true)
        #expect(plan.differences.sorted() == [
            "public.events: the table is not in the target",
            "public.users: column id is bigint in the archive but integer in the target",
            "public.users: column name (character varying(32)) is not in the target",
            "public.users: column nick (text) is NOT NULL without a default in the target and not in the archive",
        ])
    }

    @Test("type compatibility accepts only widenings that keep the COPY text")
    func types() {
        #expect(TypeCompatibility.accepts(archived: "integer", target: "bigint"))
        #expect(!TypeCompatibility.accepts(archived: "bigint", target: "integer"))
        #expect(TypeCompatibility.accepts(archived: "character varying(32)", target: "character varying(64)"))
        #expect(!TypeCompatibility.accepts(archived: "character varying(64)", target: "character varying(32)"))
        #expect(TypeCompatibility.accepts(archived: "character varying(32)", target: "text"))
        #expect(TypeCompatibility.accepts(archived: "bigint[]", target: "bigint[]"))
        #expect(!TypeCompatibility.accepts(archived: "bigint[]", target: "bigint"))
        #expect(TypeCompatibility.accepts(archived: "timestamp(3) with time zone", target: "timestamp with time zone"))
        #expect(!TypeCompatibility.accepts(archived: "timestamp with time zone", target: "timestamp without time zone"))
        #expect(!TypeCompatibility.accepts(archived: "jsonb", target: "json"))
        // Binary COPY: no integer widening; arrays keep their element type.
        #expect(!TypeCompatibility.accepts(archived: "integer", target: "bigint", binary: true))
        #expect(!TypeCompatibility.accepts(archived: "integer", target: "numeric", binary: true))
        #expect(TypeCompatibility.accepts(archived: "character varying(32)", target: "text", binary: true))
        #expect(TypeCompatibility.accepts(archived: "character varying(32)[]", target: "character varying(64)[]", binary: true))
        #expect(!TypeCompatibility.accepts(archived: "character varying(32)[]", target: "text[]", binary: true))
        #expect(!TypeCompatibility.accepts(archived: "integer[]", target: "bigint[]", binary: true))
        #expect(TypeCompatibility.accepts(archived: "timestamp(3) with time zone", target: "timestamp with time zone", binary: true))
    }
}

}

// MARK: - Against real servers

extension RestoreTests {
@Suite("restore: round trips and recovery on real servers", .serialized)
struct OnServers {
    @Test("a full restore equals its source table by table", arguments: TestServers.matrix)
    func roundTrip(major: Int) async throws {
        try await roundTrip(source: major, target: major)
    }

    @Test("a full restore into a newer major equals its source table by table",
          arguments: TestServers.pairs([(15, 17), (15, 18), (16, 17), (17, 18)]))
    func roundTripIntoNewer(source: Int, target: Int) async throws {
        try await roundTrip(source: source, target: target)
    }

    @Test("a restore into an older major (18 into 17) is refused before the target changes, naming both versions and the fix",
          .enabled(if: TestServers.testing(17, 18), "needs PostgreSQL 17 and 18 in PGVAULT_TEST_VERSIONS"))
    func restoreIntoOlderMajor() async throws {
        let fixture = try await RestoreFixtures.source(18)
        let targetDB = try TestServers.database(17, prefix: "restore")
        let error = await #expect(throws: PGVaultError.self) {
            _ = try await RestoreEngine.run(RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo))
        }
        let message = error?.description ?? ""
        #expect(error?.kind == .server)
        #expect(message.contains("taken from PostgreSQL 18.") && message.contains("runs PostgreSQL 17."), "\(message)")
        #expect(message.contains("Restore into a server of PostgreSQL 18 or newer") && message.contains("nothing was changed"), "\(message)")
        let untouched = try targetDB.connect().query("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
            """)
        #expect(untouched.scalar == "0")
        #expect(try targetDB.connect().query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
    }

    private func roundTrip(source: Int, target: Int) async throws {
        let fixture = try await RestoreFixtures.source(source)
        let targetDB = source == target ? try fixture.db.sibling(prefix: "restore") : try TestServers.database(target, prefix: "restore")
        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        options.jobs = 3
        options.analyze = true
        let summary = try await RestoreEngine.run(options)
        // pg_dump of the source's own major (at least the server's, and the lowest such).
        #expect(fixture.manifest.schema?.pgDumpVersion.split(separator: ".").first == "\(source)", "\(fixture.manifest.schema?.pgDumpVersion ?? "-")")

        #expect(summary.status == "complete" && summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(summary.units == fixture.manifest.units.count && summary.rows == fixture.manifest.units.reduce(0) { $0 + $1.rows })
        #expect(summary.postDataStatements > 300 && summary.createdPartitions.isEmpty && summary.routedUnits == 0)
        let sourceConn = try fixture.db.connect(), restored = try targetDB.connect()
        try RestoreFixtures.expectSameTables(sourceConn, restored)
        // Schema: the same objects (and, on the same major, the same dump text).
        let sourceSchema = try RestoreFixtures.pgDump(fixture.db, section: nil, bin: targetDB.server.binDir)
        let restoredSchema = try RestoreFixtures.pgDump(targetDB, section: nil, bin: targetDB.server.binDir)
        #expect(RestoreFixtures.objectHeaders(sourceSchema) == RestoreFixtures.objectHeaders(restoredSchema))
        if source == target { #expect(RestoreFixtures.normalized(sourceSchema) == RestoreFixtures.normalized(restoredSchema)) }
        // Foreign keys valid, sequences set, journal gone.
        #expect(try restored.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").scalar == "0")
        #expect(try restored.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").scalar
                == (try sourceConn.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").scalar))
        #expect(try restored.query("SELECT last_value::text || is_called::text FROM public.snowflake_seq").scalar == "424242true")
        #expect(try restored.query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
        // The restore's own verify takes the validation PostgreSQL just did as
        // the proof of each validated key; a verify on its own runs the anti-joins.
        let trusted = try await Verifier.checkRestored(
            archive: .path(fixture.archive), conninfo: targetDB.conninfo, jobs: 2, units: nil, extraRelations: [],
            trustValidatedForeignKeys: true, progress: nil)
        let keys = trusted.findings.filter { $0.check == "foreign-key" }
        #expect(trusted.ok && !keys.isEmpty && keys.allSatisfy { $0.detail.hasPrefix("validated by PostgreSQL") })
        let independent = try await Verifier.checkRestored(
            archive: .path(fixture.archive), conninfo: targetDB.conninfo, jobs: 2, units: nil, extraRelations: [], progress: nil)
        #expect(independent.findings.filter { $0.check == "foreign-key" }.allSatisfy { $0.detail.hasPrefix("no orphan rows") })
    }

    @Test("a non-empty target is refused; --clean drops what the archive holds and restores")
    func cleanAndRefusal() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let (targetDB, conn) = try RestoreFixtures.emptyTarget(fixture)
        try conn.execute("CREATE TABLE public.users (id int); INSERT INTO public.users VALUES (1); CREATE TABLE public.keep_me (id int)")
        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        do { _ = try await RestoreEngine.run(options); Issue.record("a non-empty target was not refused") } catch {
            #expect("\(error)".contains("is not empty") && "\(error)".contains("table public.keep_me"), "\(error)")
        }
        options.clean = true
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true)
        #expect(summary.dropped.contains("table public.users"))
        #expect(try conn.query("SELECT to_regclass('public.keep_me') IS NOT NULL").scalar == "t")
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), conn, except: ["public.keep_me"])
    }

    /// The restore takes Support's AdvisoryLock: it waits a moment for a
    /// lock a previous run's leader is still letting go of, then names the holder.
    @Test("a restore into a database another restore holds waits briefly, then is refused naming the holder; nothing changes")
    func secondRestoreRefused() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let (targetDB, conn) = try RestoreFixtures.emptyTarget(fixture)
        // What the leader of a running restore holds.
        try conn.execute("SET application_name = 'the other restore'")
        try conn.execute("SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext('pgvault-restore:' || current_database()))")
        let started = ContinuousClock.now
        let error = await #expect(throws: PGVaultError.self) {
            try await RestoreEngine.run(RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo))
        }
        #expect(ContinuousClock.now - started >= .seconds(2))
        #expect(error?.kind == .server, "\(String(describing: error))")
        let message = error?.message ?? "", database = try conn.query("SELECT current_database()").firstRow().string(0)
        #expect(message.contains("another pgvault restore into database \(database) is running")
                && message.contains("the other restore") && message.contains("wait for it to finish"), "\(message)")
        #expect(try conn.query("SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace").scalar == "0")
        #expect(try conn.query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
    }

    @Test("--data-only into a migrated target creates the partitions it lacks and detaches nothing for good")
    func dataOnlyCreatesPartitions() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let (targetDB, conn) = try RestoreFixtures.migratedTarget(fixture, """
            ALTER TABLE public.messages DETACH PARTITION public.messages_2025_03; DROP TABLE public.messages_2025_03;
            ALTER TABLE public.audit_logs DETACH PARTITION public.audit_logs_2024_07; DROP TABLE public.audit_logs_2024_07;
            """)
        let triggersBefore = try RestoreFixtures.triggerStates(conn)
        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        options.dataOnly = true
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(summary.createdPartitions.sorted() == ["public.audit_logs_2024_07", "public.messages_2025_03"])
        #expect(summary.routedUnits == 0)
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), conn, except: ["public._sqlx_migrations"])
        // Foreign keys back and validated, triggers as they were (member counts not doubled: servers compared above).
        #expect(try conn.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 AND convalidated").scalar
                == (try fixture.db.connect().query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conparentid = 0").scalar))
        #expect(try RestoreFixtures.triggerStates(conn) == triggersBefore)

        // The target now holds rows: a second run is refused, and --data-only checks the columns first.
        var again = options
        again.verify = false
        do { _ = try await RestoreEngine.run(again); Issue.record("a second load was not refused") } catch {
            #expect("\(error)".contains("already hold rows"))
        }
        let (other, otherConn) = try RestoreFixtures.migratedTarget(
            fixture, "ALTER TABLE public.users DROP COLUMN bio CASCADE; ALTER TABLE public.roles ALTER COLUMN color TYPE smallint")
        var mismatch = RestoreOptions(archive: fixture.archive, conninfo: other.conninfo)
        mismatch.dataOnly = true
        do { _ = try await RestoreEngine.run(mismatch); Issue.record("a mismatching target was not refused") } catch {
            let text = "\(error)"
            #expect(text.contains("public.users: column bio (character varying(190)) is not in the target"))
            #expect(text.contains("public.roles: column color is integer in the archive but smallint in the target"))
        }
        #expect(try otherConn.query("SELECT count(*) FROM public.users").scalar == "0")
        #expect(try otherConn.query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
    }

    @Test("a target partitioned by another range gets every row, routed by the server")
    func routing() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let source = try fixture.db.connect()

        // Quarters instead of months for 2025, one year for 2026.
        var sql = ""
        for year in [2025, 2026] {
            for month in 1...12 {
                let name = String(format: "messages_%d_%02d", year, month)
                sql += "ALTER TABLE public.messages DETACH PARTITION public.\(name); DROP TABLE public.\(name);\n"
            }
        }
        for q in 0..<4 {
            sql += String(format: "CREATE TABLE public.messages_2025_q%d PARTITION OF public.messages FOR VALUES FROM ('2025-%02d-01 00:00:00+00') TO ('%@');\n",
                          q + 1, q * 3 + 1, q == 3 ? "2026-01-01 00:00:00+00" : String(format: "2025-%02d-01 00:00:00+00", q * 3 + 4))
        }
        sql += "CREATE TABLE public.messages_2026 PARTITION OF public.messages FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');"
        let (quarters, conn) = try RestoreFixtures.migratedTarget(fixture, sql)
        var options = RestoreOptions(archive: fixture.archive, conninfo: quarters.conninfo)
        options.dataOnly = true
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(summary.createdPartitions.isEmpty)
        let archivedMessageUnits = fixture.manifest.units.filter { $0.table.hasPrefix("messages_202") && !$0.table.hasPrefix("messages_2024") }
        #expect(summary.routedUnits >= archivedMessageUnits.count + 1)  // + the DEFAULT partition's
        #expect(summary.rowsInDefaultPartitions.isEmpty)
        try RestoreFixtures.expectSameTables(source, conn, except: ["public._sqlx_migrations"], wholePartitioned: true)
        #expect(try conn.query("SELECT count(*) FROM ONLY public.messages_2025_q2").scalar
                == (try source.query("SELECT count(*) FROM public.messages WHERE created_at >= '2025-04-01' AND created_at < '2025-07-01'").scalar))

        // A partition missing and not created: its rows land in DEFAULT, and that is reported.
        let (missing, missingConn) = try RestoreFixtures.migratedTarget(
            fixture, "ALTER TABLE public.audit_logs DETACH PARTITION public.audit_logs_2025_05; DROP TABLE public.audit_logs_2025_05")
        var noCreate = RestoreOptions(archive: fixture.archive, conninfo: missing.conninfo)
        noCreate.dataOnly = true
        noCreate.createPartitions = false
        let report = try await RestoreEngine.run(noCreate)
        #expect(report.verifyOK == true, "\(report.verifyFailures)")
        let expected = Int64(try source.query("SELECT count(*) FROM public.audit_logs_2025_05").scalar ?? "") ?? -1
        #expect(expected > 0)
        #expect(report.rowsInDefaultPartitions == ["public.audit_logs_default": expected])
        #expect(report.createdPartitions.isEmpty)
        try RestoreFixtures.expectSameTables(source, missingConn, except: ["public._sqlx_migrations"], wholePartitioned: true)
    }

    @Test("a damaged member aborts the restore, names the member and leaves no half-loaded unit")
    func damagedMember() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let copy = try TestScratch.path("damaged")
        try FileManager.default.copyItem(atPath: fixture.archive, toPath: copy)
        // The biggest unit loads first: flip one byte in the middle of its member.
        let unit = try #require(fixture.manifest.units.max { $0.rawBytes < $1.rawBytes })
        let path = copy + "/" + unit.member
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x55
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let targetDB = try fixture.db.sibling(prefix: "restore")
        var options = RestoreOptions(archive: copy, conninfo: targetDB.conninfo)
        options.jobs = 1
        do {
            _ = try await RestoreEngine.run(options)
            Issue.record("a damaged member was loaded")
        } catch {
            #expect("\(error)".contains(unit.member), "\(error)")
            #expect("\(error)".contains("rolled back"))
        }
        let conn = try targetDB.connect()
        #expect(try conn.query("SELECT count(*) FROM \(SQL.qualified(unit.schema, unit.table))").scalar == "0")
        #expect(try conn.query("SELECT count(*) FROM pgvault_restore.units WHERE unit_id = $1", [unit.id]).scalar == "0")
    }

    @Test("a restore killed with SIGKILL and rerun with --resume ends with exact counts", arguments: [false, true])
    func killAndResume(dataOnly: Bool) async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let binary = try Shell.pgvault()
        let (targetDB, conn) = dataOnly ? try RestoreFixtures.migratedTarget(fixture) : try RestoreFixtures.emptyTarget(fixture)
        let triggersBefore = try RestoreFixtures.triggerStates(conn)
        let units = fixture.manifest.units.filter { !dataOnly || $0.table != "_sqlx_migrations" }.count

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["restore", fixture.archive, "--dbname", targetDB.conninfo, "--jobs", "2", "--quiet", "--json"]
            + (dataOnly ? ["--data-only"] : [])
        var environment = ProcessInfo.processInfo.environment
        environment[UnitLoader.testDelayVariable] = "150"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until some units are committed, then kill it mid-load.
        var done = 0
        let deadline = Date().addingTimeInterval(120)
        while done < 6 && Date() < deadline && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            done = Int((try? conn.query("SELECT count(*) FROM pgvault_restore.units").scalar ?? "0") ?? "0") ?? 0
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let journaled = Int(try conn.query("SELECT count(*) FROM pgvault_restore.units").scalar ?? "0") ?? 0
        #expect(journaled >= 6 && journaled < units)
        if dataOnly {
            // Killed with the foreign keys detached: the journal holds them.
            #expect(try conn.query("SELECT count(*) FROM pgvault_restore.detached WHERE kind = 'foreign-key'").scalar != "0")
        }

        // Without --resume the journal is found and the restore refused.
        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        options.jobs = 2
        options.dataOnly = dataOnly
        do { _ = try await RestoreEngine.run(options); Issue.record("an interrupted restore was restarted") } catch {
            #expect("\(error)".contains("--resume"))
        }
        options.resume = true
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(summary.unitsSkipped == journaled)
        #expect(summary.units + summary.unitsSkipped == units)
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), conn, except: dataOnly ? ["public._sqlx_migrations"] : [])
        #expect(try conn.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 AND convalidated").scalar
                == (try fixture.db.connect().query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conparentid = 0").scalar))
        if dataOnly { #expect(try RestoreFixtures.triggerStates(conn) == triggersBefore) }
    }

    @Test("--since/--until restore just the overlapping partitions, newest first")
    func window() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let targetDB = try fixture.db.sibling(prefix: "restore")
        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        options.window = try TimeWindow(since: "2025-03-15", until: "2025-06-01")
        options.order = .newestFirst
        // The tables the restored ones' foreign keys need come along.
        options.tables = ["messages", "audit_logs", "users", "channels", "servers"]
        let lines = RestoreFixtures.Lines()
        options.log = { lines.add($0) }
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(lines.all.contains { $0.hasPrefix("loading ") })

        let source = try fixture.db.connect(), conn = try targetDB.connect()
        try CopySession.apply(source)
        try CopySession.apply(conn)
        for parent in ["messages", "audit_logs"] {
            for month in 1...12 {
                let name = String(format: "%@_2025_%02d", parent, month)
                let rows = try conn.query("SELECT count(*) FROM public.\(name)").scalar
                if (3...5).contains(month) {
                    #expect(rows == (try source.query("SELECT count(*) FROM public.\(name)").scalar) && rows != "0", "\(name)")
                } else {
                    #expect(rows == "0", "\(name)")
                }
            }
            #expect(try conn.query("SELECT count(*) FROM public.\(parent)_default").scalar == "0")
            #expect(try conn.query("SELECT count(*) FROM public.\(parent)_2024_06").scalar == "0")
        }
        for table in ["users", "channels", "servers"] {
            #expect(try conn.query("SELECT count(*) FROM public.\(table)").scalar == (try source.query("SELECT count(*) FROM public.\(table)").scalar))
        }
        #expect(try conn.query("SELECT count(*) FROM public.roles").scalar == "0")

        // Recovery in two steps into a migrated target: recent months first
        // (reactions referencing older messages keep their foreign key NOT VALID,
        // which verification reports), then the rest, which validates it.
        let (twoStep, twoConn) = try RestoreFixtures.migratedTarget(fixture)
        var recent = RestoreOptions(archive: fixture.archive, conninfo: twoStep.conninfo)
        recent.dataOnly = true
        recent.window = try TimeWindow(since: "2026-06-01", until: nil)
        recent.order = .newestFirst
        let first = try await RestoreEngine.run(recent)
        #expect(first.verifyOK == false)
        #expect(first.notes.contains { $0.hasPrefix("foreign key message_reactions_fk_message on public.message_reactions added back NOT VALID") })
        #expect(try twoConn.query("SELECT count(*) FROM public.messages_2026_05").scalar == "0")
        var rest = RestoreOptions(archive: fixture.archive, conninfo: twoStep.conninfo)
        rest.dataOnly = true
        rest.window = try TimeWindow(since: nil, until: "2026-06-01")
        rest.includeDefaultPartitions = true
        rest.tables = ["messages", "audit_logs"]
        let second = try await RestoreEngine.run(rest)
        #expect(second.verifyOK == true, "\(second.verifyFailures)")
        #expect(second.notes.contains { $0.contains("message_reactions_fk_message") && $0.hasSuffix("is now validated") })
        #expect(try twoConn.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").scalar == "0")
        try RestoreFixtures.expectSameTables(source, twoConn, except: ["public._sqlx_migrations"])
    }
}

}

// MARK: - Fixtures

enum RestoreFixtures {
    struct Source: Sendable {
        var db: TestDatabase
        var archive: String
        var manifest: Manifest
    }

    private static let cache = SourceCache()

    /// A migrated database of `major` filled by the generator ("tiny"), with a
    /// sequence moved on, and its archive (big tables split into several units).
    /// Built once per major and shared by the tests.
    static func source(_ major: Int) async throws -> Source {
        try await cache.get(major) {
            let db = try TestServers.database(major, prefix: "rsrc")
            let conn = try db.connect()
            try Migrator(directory: RepoPaths.migrations).run(conn)
            _ = try DataGenerator(config: try GeneratorConfig.scale("tiny")).run(conninfo: db.conninfo)
            try conn.execute("SELECT setval('public.snowflake_seq', 424242, true)")
            var options = BackupOptions(conninfo: db.conninfo, output: try TestScratch.path("archive-\(major)"))
            options.jobs = 2
            options.splitBytes = 24 << 10
            let summary = try await BackupEngine.run(options)
            guard let manifest = summary.manifest, manifest.units.contains(where: { $0.fromPage != nil }) else {
                throw HarnessError("the fixture backup has no manifest or no split unit")
            }
            return Source(db: db, archive: options.output, manifest: manifest)
        }
    }

    actor SourceCache {
        private var sources: [Int: Task<Source, Error>] = [:]

        func get(_ major: Int, _ make: @escaping @Sendable () async throws -> Source) async throws -> Source {
            if let task = sources[major] { return try await task.value }
            let task = Task { try await make() }
            sources[major] = task
            return try await task.value
        }
    }

    /// A fresh database on the source's server.
    static func emptyTarget(_ fixture: Source) throws -> (TestDatabase, PGConnection) {
        let db = try fixture.db.sibling(prefix: "restore")
        return (db, try db.connect())
    }

    /// A fresh database on the source's server built by the migrations, then changed by `sql`.
    static func migratedTarget(_ fixture: Source, _ sql: String? = nil) throws -> (TestDatabase, PGConnection) {
        let (db, conn) = try emptyTarget(fixture)
        try Migrator(directory: RepoPaths.migrations).run(conn)
        if let sql { try conn.execute(sql) }
        return (db, conn)
    }

    /// Row count and an md5 of the ordered rows of every plain table and partition
    /// (or, with `wholePartitioned`, of every partitioned table as a whole).
    static func tableDigests(_ conn: PGConnection, wholePartitioned: Bool = false) throws -> [String: String] {
        try CopySession.apply(conn)
        var out: [String: String] = [:]
        for r in try Catalog.relations(conn) where r.table.schema != RestoreJournal.schema {
            let t = r.table
            if wholePartitioned ? t.kind == "partition" : t.kind == "partitioned" { continue }
            let only = t.kind == "partitioned" ? "" : "ONLY "
            out[t.qualifiedName] = try conn.query("""
                SELECT count(*)::text || ' ' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text COLLATE "C")), '-')
                FROM \(only)\(SQL.qualified(t.schema, t.name)) x
                """).scalar
        }
        return out
    }

    static func expectSameTables(
        _ source: PGConnection, _ target: PGConnection, except: Set<String> = [], wholePartitioned: Bool = false,
        minimum: Int = 11, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let a = try tableDigests(source, wholePartitioned: wholePartitioned).filter { !except.contains($0.key) }
        let b = try tableDigests(target, wholePartitioned: wholePartitioned).filter { !except.contains($0.key) }
        #expect(a.count >= minimum, sourceLocation: sourceLocation)
        if wholePartitioned {
            // The target may be partitioned differently: compare what both have.
            for (name, digest) in a where b[name] != nil || !name.contains("_20") {
                #expect(b[name] == digest, "\(name)", sourceLocation: sourceLocation)
            }
        } else {
            for name in Set(a.keys).union(b.keys).sorted() {
                #expect(a[name] == b[name], "\(name): source \(a[name] ?? "missing"), target \(b[name] ?? "missing")", sourceLocation: sourceLocation)
            }
        }
    }

    static func triggerStates(_ conn: PGConnection) throws -> [String] {
        try conn.query("SELECT tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1").rows.map { $0[0] ?? "" }
    }

    /// `pg_dump --schema-only [--section=...]` of a test database.
    static func pgDump(_ db: TestDatabase, section: String?, bin: String? = nil) throws -> String {
        let pgDump = (bin ?? db.server.binDir) + "/pg_dump"
        return try Shell.run([pgDump, "--schema-only"] + (section.map { ["--section=\($0)"] } ?? []) + ["--dbname=" + db.conninfo])
    }

    /// The dump without what differs between two dumps of equal schemas.
    static func normalized(_ dump: String) -> [String] {
        dump.split(separator: "\n").filter {
            !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") && !$0.hasPrefix("-- Dumped from")
        }.map(String.init)
    }

    static func objectHeaders(_ dump: String) -> [String] {
        dump.split(separator: "\n").filter { $0.hasPrefix("-- Name: ") }.map(String.init).sorted()
    }

    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    /// A manifest with a plain table split into two units and a monthly
    /// partitioned table with a DEFAULT partition (one month split too).
    static func syntheticManifest() -> Manifest {
        func column(_ name: String, _ type: String) -> Manifest.Column { .init(name: name, type: type, notNull: name == "id", generated: false) }
        let users = Manifest.Table(
            schema: "public", name: "users", kind: "table", columns: [column("id", "bigint"), column("name", "character varying(32)")],
            partitioning: nil, parentSchema: nil, parentName: nil, bound: nil, keyColumns: ["id"], rows: 10)
        let eventColumns = [column("id", "bigint"), column("at", "timestamp with time zone")]
        let events = Manifest.Table(
            schema: "public", name: "events", kind: "partitioned", columns: eventColumns,
            partitioning: .init(strategy: "range", keyDefinition: "RANGE (at)", keyColumns: ["at"]),
            parentSchema: nil, parentName: nil, bound: nil, keyColumns: nil, rows: 0)
        func partition(_ name: String, _ bound: String) -> Manifest.Table {
            .init(schema: "public", name: name, kind: "partition", columns: eventColumns, partitioning: nil,
                  parentSchema: "public", parentName: "events", bound: Catalog.parseBound(bound), keyColumns: nil, rows: 5)
        }
        let tables = [
            users, events,
            partition("ev_2025_01", "FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00')"),
            partition("ev_2025_02", "FOR VALUES FROM ('2025-02-01 00:00:00+00') TO ('2025-03-01 00:00:00+00')"),
            partition("ev_2025_03", "FOR VALUES FROM ('2025-03-01 00:00:00+00') TO ('2025-04-01 00:00:00+00')"),
            partition("ev_default", "DEFAULT"),
        ]
        var units: [Manifest.Unit] = []
        func unit(_ table: String, _ columns: [Manifest.Column], from: Int64? = nil, to: Int64? = nil) {
            units.append(.init(
                id: String(format: "u%05d", units.count + 1), schema: "public", table: table,
                member: "data/u\(units.count + 1).copy.zst", columns: columns.map(\.name), fromPage: from, toPage: to,
                rows: 5, rawBytes: Int64(100 * (units.count + 1)), compressedBytes: 50, sha256: "", rowDigest: ""))
        }
        unit("users", users.columns, from: 0, to: 10)
        unit("users", users.columns, from: 10)
        for t in tables.dropFirst(2) { unit(t.name, eventColumns) }
        unit("ev_2025_03", eventColumns, from: 10)
        units[4].fromPage = 0
        units[4].toPage = 10
        return Manifest(
            startedAt: "", completedAt: "",
            server: .init(version: "17", versionNumber: 170000, systemIdentifier: "1"),
            database: .init(name: "t", encoding: "UTF8"),
            snapshot: .init(id: "s", time: "", walLSN: ""),
            copySettings: [:], compression: .init(level: 3),
            selection: .init(tables: [], excludeTables: [], schemaOnly: false, dataOnly: false),
            schema: nil, sequences: [], tables: tables, units: units)
    }
}
