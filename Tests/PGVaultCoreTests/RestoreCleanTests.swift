import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

extension RestoreTests {
@Suite("restore: --clean over a target that holds all of the schema or part of it", .serialized)
struct Clean {
    @Test("--clean over the migrations schema with its data, and over the first two migrations only", arguments: TestServers.versions)
    func migrations(major: Int) async throws {
        let fixture = try await RestoreFixtures.source(major)
        let source = try fixture.db.connect()

        // All of it, data included: the archive restored once already.
        let (full, fullConn) = try RestoreFixtures.emptyTarget(fixture)
        var options = RestoreOptions(archive: fixture.archive, conninfo: full.conninfo)
        options.verify = false
        _ = try await RestoreEngine.run(options)
        try fullConn.execute("DELETE FROM public.message_reactions WHERE ctid IN (SELECT ctid FROM public.message_reactions LIMIT 5)")
        options.clean = true
        options.verify = true
        let again = try await RestoreEngine.run(options)
        #expect(again.verifyOK == true, "\(again.verifyFailures)")
        #expect(again.dropped.contains("table public.data_export_requests"))
        #expect(!again.dropped.contains { $0.contains("data_export_requests_id_seq") })  // goes with its table
        #expect(again.dropped.contains("sequence public.snowflake_seq"))
        try RestoreFixtures.expectSameTables(source, fullConn)
        #expect(try fullConn.query("SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'public.data_export_requests'::regclass AND attname = 'id'").scalar == "a")
        #expect(try fullConn.query("SELECT last_value::text FROM public.snowflake_seq").scalar == "424242")

        // Part of it: the first two migrations, and a table of the archive's that holds other rows.
        let (part, partConn) = try RestoreFixtures.emptyTarget(fixture)
        let all = try Migrator(directory: RepoPaths.migrations).migrations
        try Migrator(migrations: Array(all.prefix(2))).run(partConn)
        try partConn.execute("CREATE TABLE public.data_export_requests (id int GENERATED ALWAYS AS IDENTITY, note text); INSERT INTO public.data_export_requests (note) VALUES ('stale')")
        var partial = RestoreOptions(archive: fixture.archive, conninfo: part.conninfo)
        partial.clean = true
        let summary = try await RestoreEngine.run(partial)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        try RestoreFixtures.expectSameTables(source, partConn)
        #expect(RestoreFixtures.objectHeaders(try RestoreFixtures.pgDump(fixture.db, section: nil))
                == RestoreFixtures.objectHeaders(try RestoreFixtures.pgDump(part, section: nil)))
    }

    @Test("--clean with quoted and mixed-case names, identity and serial columns, partitions, an enum, a function, a view, an event trigger and a publication", arguments: TestServers.versions)
    func quotedNames(major: Int) async throws {
        let db = try TestServers.database(major, prefix: "rclean")
        let source = try db.connect()
        try source.execute(Self.quotedSchema)
        try source.execute(Self.quotedRows)
        let archive = try TestScratch.path("quoted-\(major)")
        _ = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: archive))

        // Into an empty target, then --clean over it once it holds everything.
        let target = try db.sibling(prefix: "rclean"), partDB = try db.sibling(prefix: "rclean")
        let targetConn = try target.connect()
        var options = RestoreOptions(archive: archive, conninfo: target.conninfo)
        _ = try await RestoreEngine.run(options)
        try targetConn.execute("UPDATE \"Ops\".\"Job Runs\" SET \"Select\" = NULL WHERE \"ID\" > 40")
        options.clean = true
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(Set(summary.dropped).isSuperset(of: [
            "table Ops.Job Runs", "table Ops.Events", "table public.MixedCase", "view Ops.Done Runs",
            "function Ops.Is Done(\"Ops\".\"Run State\")", "type Ops.Run State", "sequence Ops.Ticket No", "schema Ops",
            "event trigger Note DDL", "publication Job Feed", "collation public.Plain C", "text search configuration public.Simple Copy", "domain Ops.Positive",
        ]), "\(summary.dropped)")
        #expect(!summary.dropped.contains { $0.contains("ID_seq") || $0.contains("MixedCase_Id_seq") })
        try RestoreFixtures.expectSameTables(source, targetConn, minimum: 4)

        // A target holding part of it: the schema, one table with other rows.
        let partConn = try partDB.connect()
        try partConn.execute("""
            CREATE SCHEMA "Ops";
            CREATE TABLE "Ops"."Job Runs" ("ID" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "Select" text);
            INSERT INTO "Ops"."Job Runs" ("Select") VALUES ('stale');
            """)
        var partial = RestoreOptions(archive: archive, conninfo: partDB.conninfo)
        partial.clean = true
        let report = try await RestoreEngine.run(partial)
        #expect(report.verifyOK == true, "\(report.verifyFailures)")
        try RestoreFixtures.expectSameTables(source, partConn, minimum: 4)

        // A sequence of the archive's that is, in the target, the identity of a
        // table the archive does not hold: refused, naming it, nothing changed.
        let other = try db.sibling(prefix: "rclean")
        let otherConn = try other.connect()
        try otherConn.execute("""
            CREATE SCHEMA "Ops";
            CREATE TABLE "Ops".tickets (id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME "Ops"."Ticket No"));
            CREATE TABLE "Ops"."Job Runs" (x int);
            """)
        var refused = RestoreOptions(archive: archive, conninfo: other.conninfo)
        refused.clean = true
        do { _ = try await RestoreEngine.run(refused); Issue.record("a sequence owned by another table was dropped") } catch {
            #expect("\(error)".contains("--clean cannot drop sequence Ops.Ticket No") && "\(error)".contains("Nothing was changed"), "\(error)")
        }
        #expect(try otherConn.query("SELECT count(*) FROM pg_attribute WHERE attrelid = '\"Ops\".\"Job Runs\"'::regclass AND attname = 'x'").scalar == "1")
    }

    static let quotedSchema = """
        CREATE SCHEMA "Ops";
        CREATE TYPE "Ops"."Run State" AS ENUM ('queued', 'Done');
        CREATE SEQUENCE "Ops"."Ticket No";
        CREATE COLLATION public."Plain C" FROM "C";
        CREATE TEXT SEARCH CONFIGURATION public."Simple Copy" (COPY = pg_catalog.simple);
        CREATE DOMAIN "Ops"."Positive" AS integer CHECK (VALUE > 0);
        CREATE TABLE "Ops"."Job Runs" (
            "ID" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "Select" text COLLATE public."Plain C", "weird""col" "Ops"."Positive",
            "State" "Ops"."Run State" NOT NULL DEFAULT 'queued', ticket bigint DEFAULT nextval('"Ops"."Ticket No"'));
        CREATE TABLE "Ops"."Events" (
            "Id" bigserial, "At" timestamptz NOT NULL, "Run" bigint REFERENCES "Ops"."Job Runs" ("ID"),
            PRIMARY KEY ("Id", "At")) PARTITION BY RANGE ("At");
        CREATE TABLE "Ops"."Events 2025-01" PARTITION OF "Ops"."Events" FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00');
        CREATE TABLE "Ops"."Events Default" PARTITION OF "Ops"."Events" DEFAULT;
        CREATE INDEX "Events By Run" ON "Ops"."Events" ("Run");
        CREATE FUNCTION "Ops"."Is Done"(s "Ops"."Run State") RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT s = 'Done' $$;
        CREATE VIEW "Ops"."Done Runs" AS SELECT "ID" FROM "Ops"."Job Runs" WHERE "Ops"."Is Done"("State");
        CREATE TABLE public."MixedCase" ("Id" int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n serial);
        CREATE FUNCTION public."Note DDL"() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
        CREATE EVENT TRIGGER "Note DDL" ON ddl_command_end EXECUTE FUNCTION public."Note DDL"();
        SET client_min_messages = error;
        CREATE PUBLICATION "Job Feed" FOR TABLE "Ops"."Job Runs";
        RESET client_min_messages;
        """

    static let quotedRows = """
        INSERT INTO "Ops"."Job Runs" ("Select", "weird""col", "State")
            SELECT 'run ' || g, g, (CASE WHEN g % 2 = 0 THEN 'Done' ELSE 'queued' END)::"Ops"."Run State" FROM generate_series(1, 50) g;
        INSERT INTO "Ops"."Events" ("At", "Run") SELECT '2025-01-01 00:00:00+00'::timestamptz + g * interval '1 day', g FROM generate_series(1, 50) g;
        INSERT INTO public."MixedCase" DEFAULT VALUES; INSERT INTO public."MixedCase" DEFAULT VALUES;
        """
}
}
