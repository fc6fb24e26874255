import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// A chat database with data, its backup, and restored copies to damage.
enum VerifyFixture {
    struct Source: Sendable {
        let db: TestDatabase
        /// The backup as a directory and as a tar file.
        let archive: String
        let tar: String
    }

    /// One source database and archive per server version, made on first use.
    static func source(_ major: Int) async throws -> Source {
        try await cache.source(major)
    }

    private actor Cache {
        var made: [Int: Task<Source, Error>] = [:]

        func source(_ major: Int) async throws -> Source {
            if let task = made[major] { return try await task.value }
            let task = Task { try await VerifyFixture.make(major) }
            made[major] = task
            return try await task.value
        }
    }

    private static let cache = Cache()

    static func make(_ major: Int) async throws -> Source {
        let db = try TestServers.database(major, prefix: "vsrc")
        let conn = try db.connect()
        try Migrator(directory: RepoPaths.migrations).run(conn)
        try conn.execute("""
            INSERT INTO users (id, username, email, password_hash, bio, created_at)
            SELECT g, 'user_' || g, 'u' || g || '@example.com', 'hash' || g,
                   CASE WHEN g % 4 = 0 THEN E'tab\\there\\nnew \\\\N 😀' ELSE repeat('bio ', 20) END,
                   '2024-01-01'::timestamptz + g * interval '1 hour'
            FROM generate_series(1, 400) g;
            INSERT INTO servers (id, owner_id, name) SELECT 1000 + g, g, 'server ' || g FROM generate_series(1, 5) g;
            INSERT INTO channels (id, server_id, name) SELECT 2000 + g, 1001 + g % 5, 'chan' || g FROM generate_series(1, 10) g;
            INSERT INTO server_members (server_id, user_id) SELECT 1001 + g % 5, g FROM generate_series(1, 400) g;
            INSERT INTO messages (id, channel_id, author_id, content, created_at)
            SELECT 100000 + g, 2001 + g % 10, 1 + g % 400, 'message ' || g, '2024-01-01'::timestamptz + g * interval '97 minutes'
            FROM generate_series(1, 3000) g;
            INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_name)
            SELECT 100000 + g, '2024-01-01'::timestamptz + g * interval '97 minutes', 1 + g % 400, 'e' || g % 3
            FROM generate_series(1, 3000, 3) g;
            INSERT INTO audit_logs (server_id, user_id, action_type, created_at)
            SELECT 1001 + g % 5, 1 + g % 400, 1, '2024-01-01'::timestamptz + g * interval '1 day' FROM generate_series(1, 150) g;
            INSERT INTO invites (code, server_id, channel_id, inviter_id) SELECT 'inv' || g, 1001, 2001, g FROM generate_series(1, 20) g;
            """)
        let archive = try TestScratch.directory("verify-src") + "/archive"
        var options = BackupOptions(conninfo: db.conninfo, output: archive)
        options.splitBytes = 24 << 10  // users (about 80 KiB) is split into ctid-range units
        _ = try await BackupEngine.run(options)
        let tar = try TestScratch.directory("verify-tar") + "/chat.tar"
        _ = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: tar, form: .file))
        return Source(db: db, archive: archive, tar: tar)
    }

    /// A copy of the archive's data in a fresh database of the same server, made
    /// the way a restore makes it: the schema from the migrations (after
    /// `prepare`, which may re-partition it), then every unit COPYed into its
    /// partition by name, or through its partitioned table when the target has
    /// no partition of that name.
    static func restored(_ source: Source, prepare: (PGConnection) throws -> Void = { _ in }) throws -> TestDatabase {
        let target = try source.db.sibling(prefix: "vdst")
        let conn = try target.connect()
        try Migrator(directory: RepoPaths.migrations).run(conn)
        try prepare(conn)
        try conn.execute("TRUNCATE _sqlx_migrations")
        try CopySession.apply(conn)
        try conn.execute("SET session_replication_role = replica")
        let archive = try Archive.open(source.archive)
        let manifest = try Archive.manifest(of: archive)
        let present = Set(try Catalog.relations(conn).map(\.table.qualifiedName))
        for unit in manifest.units {
            let table = try #require(manifest.table(schema: unit.schema, name: unit.table))
            var into = SQL.qualified(unit.schema, unit.table)
            if !present.contains(unit.qualifiedTable), let ps = table.parentSchema, let pn = table.parentName {
                into = SQL.qualified(ps, pn)
            }
            let columns = unit.columns.map(SQL.ident).joined(separator: ", ")
            try conn.copyIn("COPY \(into) (\(columns)) FROM STDIN\(unit.format.options())") { writer in
                try Archive.streamUnit(unit, from: archive) { try writer.write($0) }
            }
        }
        return target
    }

    /// Runs SQL on the target as a damaging restore would: triggers (and so
    /// foreign keys) off.
    static func damage(_ db: TestDatabase, _ sql: String) throws {
        let conn = try db.connect()
        try conn.execute("SET session_replication_role = replica; \(sql)")
    }

    /// Restores the newest server's archive (after `prepare`), damages the
    /// copy with `sql`, and verifies it against the archive.
    static func verifyRestored(
        damage sql: String? = nil, prepare: (PGConnection) throws -> Void = { _ in }
    ) async throws -> (report: VerifyReport, target: TestDatabase, source: Source) {
        let source = try await VerifyFixture.source(TestServers.newest)
        let target = try restored(source, prepare: prepare)
        if let sql { try damage(target, sql) }
        let report = try await Verifier.checkRestored(
            archive: .path(source.archive), conninfo: target.conninfo, jobs: 2, units: nil, extraRelations: [], progress: nil)
        return (report, target, source)
    }

    static func copyArchive(_ source: Source) throws -> String {
        let copy = try TestScratch.directory("verify-dmg") + "/archive"
        try FileManager.default.copyItem(atPath: source.archive, toPath: copy)
        return copy
    }
}

extension VerifyReport {
    func failure(_ check: String, _ object: String, constraint: String? = nil) -> VerifyFinding? {
        failures.first { $0.check == check && $0.object == object && (constraint == nil || $0.constraint == constraint) }
    }

    var failureList: String { failures.map { "\($0.check) \($0.object) \($0.constraint ?? "") \($0.detail) \($0.samples)" }.joined(separator: "\n") }
}

@Suite("verify")
struct VerifyTests {
    // MARK: - Offline pieces

    @Test("relations file: simple, qualified, composite and quoted names; comments")
    func relationsFile() throws {
        let relations = try DeclaredRelation.parse("""
            # relations the schema does not declare
            messages.author_id -> users.id
              public.message_reactions.user_id->public.users.id   # trailing comment

            attachments.(message_id, message_created_at) -> messages.(id, created_at)
            "Ops"."Job Runs"."Owner Id" -> Users.ID
            """)
        #expect(relations == [
            DeclaredRelation(from: "public.messages(author_id)", to: "public.users(id)"),
            DeclaredRelation(from: "public.message_reactions(user_id)", to: "public.users(id)"),
            DeclaredRelation(from: "public.attachments(message_id, message_created_at)", to: "public.messages(id, created_at)"),
            DeclaredRelation(from: "\"Ops\".\"Job Runs\"(\"Owner Id\")", to: "public.users(id)"),
        ])
        let (child, parent) = try relations[3].ends()
        #expect(child == DeclaredRelation.End(schema: "Ops", table: "Job Runs", columns: ["Owner Id"]))
        #expect(parent.qualifiedName == "public.users")
        // The canonical form reads back the same.
        #expect(try DeclaredRelation.parse(relations.map(\.description).joined(separator: "\n")) == relations)
    }

    @Test("relations file: each mistake names its line", arguments: [
        ("messages.author_id users.id", "expected '->'"),
        ("messages -> users.id", "expected table.column"),
        ("a.(x, y) -> b.(x)", "2 column(s) on the left, 1 on the right"),
        ("a.b.c.d -> e.f", "expected table.column or schema.table.column"),
        ("\"open.x -> b.c", "unterminated quoted name"),
        ("a.x -> b.y extra", "unexpected text"),
    ])
    func relationsFileErrors(line: String, message: String) throws {
        let error = #expect(throws: PGVaultError.self) { try DeclaredRelation.parse("# ok\n\(line)\n", source: "rel.txt") }
        #expect(error?.kind == .usage)
        #expect(error?.description.hasPrefix("rel.txt, line 2: ") == true, "\(error?.description ?? "")")
        #expect(error?.description.contains(message) == true, "\(error?.description ?? "")")
    }

    @Test("report: table lists failures first with samples; JSON round-trips; ok follows the findings")
    func reportOutput() throws {
        let report = VerifyReport(findings: [
            .ok("digest", "public.users", "400 rows; content digest matches"),
            .failed("foreign-key", "public.messages", constraint: "messages_fk_author", "2 row(s) reference no row of public.users", samples: ["author_id=7", "author_id=8"]),
            VerifyFinding(check: "digest", status: "skipped", object: "public.odd", detail: "column orders differ"),
        ], durationSeconds: 1.25)
        #expect(!report.ok)
        #expect(report.failures.map(\.object) == ["public.messages"])
        let table = report.table()
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("CHECK"))
        #expect(lines[1].contains("foreign-key") && lines[1].contains("FAILED") && lines[1].contains("messages_fk_author"))
        #expect(lines[2].contains("samples: author_id=7; author_id=8"))
        #expect(lines[3].contains("SKIPPED"))
        #expect(!table.contains("400 rows"))  // passing checks only with verbose
        #expect(report.table(verbose: true).contains("400 rows; content digest matches"))
        #expect(!table.split(separator: "\n").contains { $0.hasSuffix(" ") })
        #expect(lines.last == "FAILED: 1 of 3 checks failed (foreign-key 1) (1 skipped) in 1.2 s")
        let decoded = try JSONDecoder().decode(VerifyReport.self, from: Data(try report.json().utf8))
        #expect(decoded.findings == report.findings && decoded.ok == false)
        #expect(VerifyReport(findings: [.ok("archive", "m", "fine")], durationSeconds: 0).ok)
    }

    @Test("restore plan: partitions matched by bound under any name; a missing one named; another layout compared whole")
    func restorePlan() throws {
        let tables = [
            table("m", "partitioned"), table("m_jan", "partition", parent: "m", bound: jan),
            table("m_feb", "partition", parent: "m", bound: feb), table("u", "table"),
        ]
        let units = [unit("u1", "m_jan"), unit("u2", "m_feb"), unit("u3", "u"), unit("u4", "u")]

        // Same bounds, one partition renamed: compared per partition.
        var target = [table("m", "partitioned"), table("january", "partition", parent: "m", bound: jan),
                      table("m_feb", "partition", parent: "m", bound: feb), table("u", "table")]
        var plan = RestorePlan.make(tables: tables, units: units, target: target, selected: nil)
        #expect(plan.findings.isEmpty)
        #expect(plan.checks.map(\.object) == ["public.m_jan", "public.m_feb", "public.u"])
        #expect(plan.checks[0].target.name == "january" && plan.checks[0].note == "on the target: public.january")
        #expect(plan.checks[2].units.map(\.id) == ["u3", "u4"])  // ctid-range units merged

        // A partition missing: named with its bound; the rest still compared.
        target.remove(at: 1)
        plan = RestorePlan.make(tables: tables, units: units, target: target, selected: nil)
        #expect(plan.findings.count == 1)
        #expect(plan.findings[0].object == "public.m_jan" && plan.findings[0].detail.contains(jan))
        #expect(plan.checks.map(\.object) == ["public.m_feb", "public.u"])

        // Partitioned differently (a quarter): the partitioned table as a whole.
        target = [table("m", "partitioned"), table("m_q1", "partition", parent: "m",
                  bound: "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-04-01 00:00:00+00')"), table("u", "table")]
        plan = RestorePlan.make(tables: tables, units: units, target: target, selected: nil)
        #expect(plan.findings.isEmpty)
        #expect(plan.checks.map(\.object) == ["public.m", "public.u"])
        #expect(plan.checks[0].units.map(\.id) == ["u1", "u2"])
        #expect(plan.checks[0].sql == "COPY (SELECT \"id\" FROM \"public\".\"m\") TO STDOUT")
        #expect(plan.checks[1].sql == "COPY (SELECT \"id\" FROM ONLY \"public\".\"u\") TO STDOUT")

        // Only some units: only their tables.
        plan = RestorePlan.make(tables: tables, units: units, target: target, selected: ["u4"])
        #expect(plan.checks.map(\.object) == ["public.u"])
        // A table missing altogether.
        plan = RestorePlan.make(tables: tables, units: units, target: [], selected: nil)
        #expect(plan.findings.map(\.object) == ["public.m", "public.u"])
    }

    @Test("restore plan: a missing partition's rows in a DEFAULT partition compare whole; a selective restore compares its units")
    func restorePlanDefault() throws {
        let tables = [
            table("m", "partitioned"), table("m_jan", "partition", parent: "m", bound: jan),
            table("m_feb", "partition", parent: "m", bound: feb), table("m_default", "partition", parent: "m", bound: "DEFAULT"),
        ]
        let units = [unit("u1", "m_jan"), unit("u2", "m_feb"), unit("u3", "m_default")]

        // January missing, the target's DEFAULT partition (another name) took its rows: compared whole.
        let withDefault = [table("m", "partitioned"), table("m_feb", "partition", parent: "m", bound: feb),
                           table("m_other", "partition", parent: "m", bound: "DEFAULT")]
        var plan = RestorePlan.make(tables: tables, units: units, target: withDefault, selected: nil)
        #expect(plan.findings.isEmpty)
        #expect(plan.checks.map(\.object) == ["public.m"])
        #expect(plan.checks[0].units.map(\.id) == ["u1", "u2", "u3"])
        #expect(plan.checks[0].note == "m_jan not on the target, rows routed to m_other: compared as a whole")
        // ... and named if the table then differs.
        #expect(plan.checks[0].ifDifferent.map(\.object) == ["public.m_jan"])
        #expect(plan.checks[0].ifDifferent[0].detail.contains(jan) && plan.checks[0].ifDifferent[0].detail.contains("its 10 rows"))

        // A selective restore: only the restored units.
        plan = RestorePlan.make(tables: tables, units: units, target: withDefault, selected: ["u1"])
        #expect(plan.checks.map(\.object) == ["public.m"] && plan.checks[0].units.map(\.id) == ["u1"])
        // So too into a target partitioned differently (no DEFAULT, one quarter).
        let quarter = [table("m", "partitioned"), table("m_q1", "partition", parent: "m",
                       bound: "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-04-01 00:00:00+00')")]
        plan = RestorePlan.make(tables: tables, units: units, target: quarter, selected: ["u1", "u2"])
        #expect(plan.checks.map(\.object) == ["public.m"] && plan.checks[0].units.map(\.id) == ["u1", "u2"])
        #expect(plan.checks[0].note?.contains("partitioned differently") == true)

        // No DEFAULT partition on the target to take them: the missing partitions are named.
        plan = RestorePlan.make(tables: tables, units: units, target: Array(withDefault.prefix(2)), selected: nil)
        #expect(plan.findings.map(\.object) == ["public.m_jan", "public.m_default"])
        #expect(plan.checks.map(\.object) == ["public.m_feb"] && plan.checks[0].ifDifferent.isEmpty)
    }

    // Tables and units of a manifest, for the restore plans above.
    var jan: String { "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')" }
    var feb: String { "FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00')" }

    func table(_ name: String, _ kind: String, parent: String? = nil, bound: String? = nil) -> Manifest.Table {
        Manifest.Table(
            schema: "public", name: name, kind: kind, columns: [], partitioning: nil,
            parentSchema: parent.map { _ in "public" }, parentName: parent,
            bound: bound.map(Catalog.parseBound), keyColumns: ["id"], rows: 10)
    }

    func unit(_ id: String, _ t: String) -> Manifest.Unit {
        Manifest.Unit(id: id, schema: "public", table: t, member: "data/\(id).copy.zst", columns: ["id"],
                      rows: 10, rawBytes: 30, compressedBytes: 20, sha256: "", rowDigest: RowDigest().hex)
    }

    // MARK: - Archive damage (offline)

    @Test("a whole archive passes, as a directory and as a tar file")
    func cleanArchive() async throws {
        let source = try await VerifyFixture.source(TestServers.newest)
        let report = try await Verifier.checkArchive(path: source.archive, jobs: 3, progress: nil)
        #expect(report.ok, "\(report.failureList)")
        let manifest = try Archive.manifest(of: try Archive.open(source.archive))
        #expect(manifest.units.contains { $0.fromPage != nil })
        #expect(report.findings.count == manifest.units.count + 2)  // every unit and both schema members
        #expect(report.findings.allSatisfy { $0.check == "archive" && $0.status == "ok" })

        let tarReport = try await Verifier.checkArchive(path: source.tar, jobs: 2, progress: nil)
        #expect(tarReport.ok, "\(tarReport.failureList)")
        let tarManifest = try Archive.manifest(of: try Archive.open(source.tar))
        #expect(tarReport.findings.count == tarManifest.units.count + 2)

        let missing = await #expect(throws: PGVaultError.self) {
            try await Verifier.checkArchive(path: "/nonexistent/archive", jobs: 1, progress: nil)
        }
        #expect(missing?.description.contains("does not exist") == true)
    }

    enum Damage: String, CaseIterable, Sendable {
        case truncatedMember, flippedByte, missingMember, extraMember, editedRowCount, editedChecksum
        case unknownFormatVersion, brokenManifest
    }

    @Test("each kind of archive damage is found and names the member", arguments: Damage.allCases)
    func archiveDamage(damage: Damage) async throws {
        let source = try await VerifyFixture.source(TestServers.newest)
        let path = try VerifyFixture.copyArchive(source)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        var manifest = try Archive.manifest(of: try Archive.open(path))
        let unit = try #require(manifest.units.first { $0.rows > 100 })
        let file = path + "/" + unit.member
        func editManifest(_ edit: (inout Manifest) -> Void) throws {
            edit(&manifest)
            try Data(try manifest.encoded()).write(to: URL(fileURLWithPath: path + "/manifest.json"))
        }
        let expected: (check: String, object: String, words: String)
        switch damage {
        case .truncatedMember:
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try handle.truncate(atOffset: UInt64(unit.compressedBytes / 2))
            try handle.close()
            expected = ("archive", unit.member, "is truncated: \(unit.compressedBytes / 2) of \(unit.compressedBytes) bytes")
        case .flippedByte:
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            bytes[bytes.count / 2] ^= 0x20
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            expected = ("archive", unit.member, "is damaged")
        case .missingMember:
            try FileManager.default.removeItem(atPath: file)
            expected = ("archive", unit.member, "is missing from the archive")
        case .extraMember:
            try Data("stray".utf8).write(to: URL(fileURLWithPath: path + "/data/u99999.copy.zst"))
            expected = ("archive", "data/u99999.copy.zst", "extra member")
        case .editedRowCount:
            try editManifest { m in m.units[m.units.firstIndex(of: unit)!].rows += 1 }
            expected = ("rows", unit.member, "decoded \(unit.rows) rows; manifest.json says \(unit.rows + 1)")
        case .editedChecksum:
            try editManifest { m in m.units[m.units.firstIndex(of: unit)!].sha256 = String(repeating: "0", count: 64) }
            expected = ("archive", unit.member, "SHA-256")
        case .unknownFormatVersion:
            try editManifest { $0.formatVersion = 99 }
            expected = ("archive", "manifest.json", "format version 99 is newer")
        case .brokenManifest:
            try Data("{\"format\": \"pgvault-archive\", ".utf8).write(to: URL(fileURLWithPath: path + "/manifest.json"))
            expected = ("archive", "manifest.json", "not valid JSON")
        }
        let report = try await Verifier.checkArchive(path: path, jobs: 2, progress: nil)
        #expect(!report.ok)
        let finding = try #require(report.failure(expected.check, expected.object), "\(report.failureList)")
        #expect(finding.detail.contains(expected.words), "\(finding.detail)")
        if damage != .editedRowCount {
            #expect(report.failures.count == 1, "\(report.failureList)")
        } else {  // the table's total no longer adds up either
            #expect(report.failures.contains { $0.check == "rows" && $0.object == unit.qualifiedTable })
        }
    }

    @Test("a tar file: a flipped byte names its member; a cut tar is found")
    func tarDamage() async throws {
        let source = try await VerifyFixture.source(TestServers.newest)
        let manifest = try Archive.manifest(of: try Archive.open(source.tar))
        let unit = try #require(manifest.units.first { $0.rows > 100 })
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source.tar)))
        // ustar: the entry's name opens its 512-byte header; the data follows.
        let name = Array(unit.member.utf8)
        let header = try #require((0..<(original.count - name.count)).first { original[$0..<($0 + name.count)].elementsEqual(name) })
        var flipped = original
        flipped[header + 512 + Int(unit.compressedBytes) / 2] ^= 0x01
        let dir = try TestScratch.directory("verify-tardmg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(flipped).write(to: URL(fileURLWithPath: dir + "/flipped.tar"))
        let report = try await Verifier.checkArchive(path: dir + "/flipped.tar", jobs: 2, progress: nil)
        #expect(report.failures.map(\.object) == [unit.member], "\(report.failureList)")

        try Data(original.prefix(original.count / 2)).write(to: URL(fileURLWithPath: dir + "/cut.tar"))
        let cut = try await Verifier.checkArchive(path: dir + "/cut.tar", jobs: 2, progress: nil)
        // manifest.json, written last, is lost first; the finding names the cut file, not the manifest.
        #expect(cut.failures.map(\.object) == [dir + "/cut.tar"], "\(cut.failureList)")
        #expect(cut.failures.allSatisfy { $0.detail.contains("is truncated") && !$0.detail.contains("errno") }, "\(cut.failureList)")
    }

    // MARK: - Restored database

    @Test("a clean restore passes", arguments: TestServers.matrix)
    func cleanRestore(major: Int) async throws {
        let source = try await VerifyFixture.source(major)
        let target = try VerifyFixture.restored(source)
        let report = try await Verifier.checkRestored(
            archive: .path(source.archive), conninfo: target.conninfo, jobs: 3, units: nil, extraRelations: [], progress: nil)
        #expect(report.ok, "\(report.failureList)")
        let digests = report.findings.filter { $0.check == "digest" }
        #expect(digests.contains { $0.object == "public.users" && $0.detail.hasPrefix("400 rows") })
        #expect(digests.contains { $0.object == "public.messages_2024_03" })
        let fks = report.findings.filter { $0.check == "foreign-key" }
        #expect(fks.contains { $0.constraint == "message_reactions_fk_message" && $0.status == "ok" })
        // One constraint per foreign key: the clones on partitions are not listed.
        #expect(fks.filter { $0.constraint == "messages_fk_author" }.count == 1)
    }

    @Test("--unit naming no unit of the archive is an archive error naming the option, found before connecting")
    func unknownUnit() async throws {
        let source = try await VerifyFixture.source(TestServers.newest)
        let error = await #expect(throws: PGVaultError.self) {
            try await Verifier.checkRestored(
                archive: .path(source.archive), conninfo: "dbname=nosuch host=/nonexistent-pgvault-socket-dir", jobs: 1,
                units: ["u99999"], extraRelations: [], progress: nil)
        }
        #expect(error?.kind == .archive && error?.message.contains("--unit 'u99999'") == true, "\(String(describing: error))")
    }

    @Test("orphans left by a delete behind disabled triggers are named with table, constraint and keys")
    func orphanAfterReplicaDelete() async throws {
        let report = try await VerifyFixture.verifyRestored(damage: "DELETE FROM users WHERE id = 7; DELETE FROM messages WHERE id = 100004").report
        #expect(!report.ok)
        let author = try #require(report.failure("foreign-key", "public.messages", constraint: "messages_fk_author"), "\(report.failureList)")
        #expect(author.samples == ["author_id=7 (8 rows)"])
        #expect(author.detail.hasPrefix("8 row(s) with 1 distinct key(s) reference no row of public.users"))
        #expect(report.failure("foreign-key", "public.server_members", constraint: "server_members_user_id_fkey")?.samples == ["user_id=7"])
        // Composite key into a partitioned table.
        let reaction = try #require(report.failure("foreign-key", "public.message_reactions", constraint: "message_reactions_fk_message"))
        #expect(reaction.samples == ["(message_id, message_created_at)=(100004, 2024-01-01 06:28:00+00)"])
        // The content checks name the rows too.
        let users = try #require(report.failure("rows", "public.users"))
        #expect(users.detail.contains("399 rows, the archive 400 (1 missing)"))
        #expect(users.samples == ["id=7 (missing on the target)"])
        #expect(report.failure("rows", "public.messages_2024_01")?.samples == ["(id, created_at)=(100004, 2024-01-01 06:28:00+00) (missing on the target)"])
    }

    @Test("a missing partition and a partition's missing rows are named")
    func missingPartition() async throws {
        let report = try await VerifyFixture.verifyRestored(damage: "DROP TABLE audit_logs_2024_03; DELETE FROM messages_2024_02").report
        let dropped = try #require(report.failure("rows", "public.audit_logs_2024_03"), "\(report.failureList)")
        #expect(dropped.detail.contains("missing on the target"))
        #expect(dropped.detail.contains("FOR VALUES FROM ('2024-03-01 00:00:00+00') TO ('2024-04-01 00:00:00+00')"))
        #expect(dropped.detail.contains("its 31 rows"))
        let emptied = try #require(report.failure("rows", "public.messages_2024_02"))
        #expect(emptied.detail.hasPrefix("the target has 0 rows"))
        #expect(emptied.samples.count == 5)
        // Reactions to the deleted messages are orphans now.
        #expect(report.failure("foreign-key", "public.message_reactions", constraint: "message_reactions_fk_message") != nil)
    }

    @Test("a changed value is found by the digest and its row named")
    func changedValue() async throws {
        let report = try await VerifyFixture.verifyRestored(damage: "UPDATE users SET bio = 'changed' WHERE id = 42").report
        #expect(report.failures.count == 1, "\(report.failureList)")
        let users = try #require(report.failure("digest", "public.users"))
        #expect(users.detail.contains("same 400 rows, but the content differs"))
        #expect(users.samples == ["id=42 (changed)"])
    }

    @Test("a target partitioned differently or with renamed partitions still passes")
    func otherLayouts() async throws {
        let (report, quarter, source) = try await VerifyFixture.verifyRestored { conn in
            try conn.execute("""
                DROP TABLE audit_logs_2024_01, audit_logs_2024_02, audit_logs_2024_03;
                CREATE TABLE audit_logs_2024_q1 PARTITION OF audit_logs
                    FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-04-01 00:00:00+00');
                ALTER TABLE messages_2024_05 RENAME TO "May 2024";
                """)
        }
        #expect(report.ok, "\(report.failureList)")
        let whole = try #require(report.findings.first { $0.object == "public.audit_logs" })
        #expect(whole.detail.contains("150 rows") && whole.detail.contains("partitioned differently"))
        let may = try #require(report.findings.first { $0.object == "public.messages_2024_05" })
        #expect(may.detail.contains("on the target: public.May 2024"))

        // Changed rows are still found at the level of the whole table.
        try VerifyFixture.damage(quarter, "UPDATE audit_logs SET action_type = 2 WHERE created_at = '2024-02-02 00:00:00+00'")
        let damaged = try await Verifier.checkRestored(
            archive: .path(source.archive), conninfo: quarter.conninfo, jobs: 2, units: nil, extraRelations: [], progress: nil)
        let changed = try #require(damaged.failure("digest", "public.audit_logs"), "\(damaged.failureList)")
        #expect(changed.samples.count == 1 && changed.samples[0].hasSuffix("2024-02-02 00:00:00+00) (changed)"))
    }

    @Test("a partition missing at load time: its rows routed into DEFAULT pass, compared whole")
    func rowsInDefault() async throws {
        let (report, target, source) = try await VerifyFixture.verifyRestored { conn in
            try conn.execute("DROP TABLE audit_logs_2024_03")
        }
        #expect(report.ok, "\(report.failureList)")
        let whole = try #require(report.findings.first { $0.object == "public.audit_logs" })
        #expect(whole.detail.hasPrefix("150 rows") && whole.detail.contains("audit_logs_2024_03 not on the target"))
        let conn = try target.connect()
        #expect(try conn.query("SELECT count(*) FROM ONLY audit_logs_default").scalar == "31")

        // Those rows gone: the table differs, and the missing partition is named.
        try VerifyFixture.damage(target, "DELETE FROM audit_logs_default")
        let damaged = try await Verifier.checkRestored(
            archive: .path(source.archive), conninfo: target.conninfo, jobs: 2, units: nil, extraRelations: [], progress: nil)
        #expect(damaged.failure("rows", "public.audit_logs")?.detail.contains("(31 missing)") == true, "\(damaged.failureList)")
        #expect(damaged.failure("rows", "public.audit_logs_2024_03")?.detail.contains("its 31 rows may not be in public.audit_logs_default") == true)
    }

    // MARK: - Foreign keys of a database

    @Test("undeclared relations from a relations file are checked like foreign keys")
    func undeclaredRelation() async throws {
        let source = try await VerifyFixture.source(TestServers.newest)
        let target = try VerifyFixture.restored(source)
        try VerifyFixture.damage(target, """
            ALTER TABLE messages DROP CONSTRAINT messages_fk_author;
            ALTER TABLE message_reactions DROP CONSTRAINT message_reactions_user_id_fkey;
            SET session_replication_role = origin;
            DELETE FROM server_members WHERE user_id = 300;
            DELETE FROM users WHERE id = 300;
            """)
        let dir = try TestScratch.directory("verify-rel")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/relations.txt"
        try """
            # not declared in this schema
            messages.author_id -> users.id
            message_reactions.user_id -> users.id
            messages.channel_id -> nosuch.id
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let relations = try DeclaredRelation.load(path: file)
        let report = try await Verifier.checkForeignKeys(conninfo: target.conninfo, jobs: 2, extraRelations: relations, progress: nil)
        let author = try #require(report.failure("relation", "public.messages", constraint: "public.messages(author_id) -> public.users(id)"), "\(report.failureList)")
        #expect(author.samples == ["author_id=300 (7 rows)"] && author.detail.hasPrefix("7 row(s) with 1 distinct key(s)"))
        let reactions = try #require(report.failure("relation", "public.message_reactions"))
        #expect(reactions.samples.count == 1 && reactions.samples[0].hasPrefix("user_id=300"))
        let unknown = try #require(report.failure("relation", "public.messages", constraint: "public.messages(channel_id) -> public.nosuch(id)"))
        #expect(unknown.detail == "table public.nosuch does not exist")
        #expect(report.failures.count == 3, "\(report.failureList)")
    }

    @Test("NOT VALID constraints and MATCH FULL keys are checked")
    func notValidAndMatchFull() async throws {
        let db = try TestServers.database(prefix: "vfk")
        let conn = try db.connect()
        try conn.execute("""
            CREATE TABLE parent (a int, b int, PRIMARY KEY (a, b));
            CREATE TABLE child_simple (id int PRIMARY KEY, a int, b int);
            CREATE TABLE child_full (id int PRIMARY KEY, a int, b int);
            CREATE TABLE "Odd Child" ("Parent A" int);
            INSERT INTO parent VALUES (1, 1), (2, 2);
            INSERT INTO child_simple VALUES (1, 1, 1), (2, 9, NULL), (3, NULL, NULL), (4, 3, 3);
            INSERT INTO child_full VALUES (1, 1, 1), (2, 9, NULL), (3, NULL, NULL);
            INSERT INTO "Odd Child" VALUES (1), (5);
            ALTER TABLE child_simple ADD CONSTRAINT simple_fk FOREIGN KEY (a, b) REFERENCES parent NOT VALID;
            ALTER TABLE child_full ADD CONSTRAINT full_fk FOREIGN KEY (a, b) REFERENCES parent MATCH FULL NOT VALID;
            CREATE TABLE single (a int PRIMARY KEY);
            INSERT INTO single VALUES (1);
            ALTER TABLE "Odd Child" ADD CONSTRAINT "Odd FK" FOREIGN KEY ("Parent A") REFERENCES single NOT VALID;
            """)
        let report = try await Verifier.checkForeignKeys(conninfo: db.conninfo, jobs: 2, extraRelations: [], progress: nil)
        #expect(report.findings.count == 3)
        let simple = try #require(report.failure("foreign-key", "public.child_simple", constraint: "simple_fk"))
        #expect(simple.samples == ["(a, b)=(3, 3)"])  // (9, NULL) is fine under MATCH SIMPLE
        #expect(simple.detail.contains("(NOT VALID constraint)"))
        let full = try #require(report.failure("foreign-key", "public.child_full", constraint: "full_fk"))
        #expect(full.samples == ["(a, b)=(9, NULL)"])  // partly NULL violates MATCH FULL
        let odd = try #require(report.failure("foreign-key", "public.Odd Child", constraint: "Odd FK"))
        #expect(odd.samples == ["Parent A=5"])
    }

    @Test("each foreign-key check is one anti-join")
    func antiJoinPlan() async throws {
        let source = try await VerifyFixture.source(TestServers.newest)
        let conn = try source.db.connect()
        let checks = try ForeignKeys.declared(conn)
        let composite = try #require(checks.first { $0.constraint == "message_reactions_fk_message" })
        #expect(composite.parentPartitioned && composite.parent.columns == ["id", "created_at"])
        try conn.execute("SET enable_nestloop = off")
        for check in checks {
            let plan = try conn.query("EXPLAIN \(check.sql)").rows.compactMap { $0[0] }.joined(separator: "\n")
            #expect(plan.contains("Anti Join") && !plan.contains("Nested Loop"), "\(check.constraint):\n\(plan)")
            #expect(!plan.contains("SubPlan"), "\(check.constraint):\n\(plan)")
        }
    }
}
