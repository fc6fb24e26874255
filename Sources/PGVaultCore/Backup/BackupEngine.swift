import ArchiveIO
import CryptoDigest
import Foundation
import PGClient
import ZstdStream

public struct BackupOptions: Sendable {
    public enum Form: String, Sendable, CaseIterable { case directory, file }

    public var conninfo: String
    /// Final path of the archive (a directory, or a file), or "-" for a tar on stdout.
    public var output: String
    public var form: Form
    /// `output` is a wanted name in a repository (``Repository/newBackupPath``):
    /// when another backup has it, this one takes the first free `-N` suffix.
    public var uniqueName = false
    /// A repository folder to name the backup in (`--repo`), instead of
    /// `output`: the name is `<database>-<start time>`, the database being the
    /// one the leader connection reports, claimed as with `uniqueName`.
    public var repository: String?
    public var jobs: Int = 2
    /// Shell-style patterns (`*`, `?`) on `schema.table` or `table`; a partitioned
    /// parent selects its partitions.
    public var tables: [String] = []
    public var excludeTables: [String] = []
    public var schemaOnly = false
    public var dataOnly = false
    /// zstd level. 2, not zstd's default 3: on the chat data's binary COPY it
    /// compresses within 5 % of level 3 for about 30 % less CPU, and the
    /// client's CPU is what the backup shares with the server's COPY
    /// (docs/benchmarks.md).
    public var compressionLevel: Int32 = 2
    /// `true`: binary COPY for every table whose column types allow it
    /// (``CopyFormat``); `false`: text for all.
    public var binaryCopy = true
    /// Tables or partitions larger than this are split into ctid ranges of about this size.
    public var splitBytes: Int64 = 256 << 20
    /// How long to wait for each ACCESS SHARE lock, e.g. "30s".
    public var lockWaitTimeout: String = "30s"
    public var pgBin: String?
    /// Called about once a second with the progress so far.
    public var progress: (@Sendable (BackupProgress) -> Void)?

    public init(conninfo: String, output: String, form: Form = .directory) {
        self.conninfo = conninfo
        self.output = output
        self.form = output == "-" ? .file : form
    }
}

public struct BackupProgress: Sendable {
    public var unitsDone: Int
    public var unitsTotal: Int
    public var rows: Int64
    public var rawBytes: Int64
    public var compressedBytes: Int64
    public var estimatedBytes: Int64
    public var elapsed: Double
}

public struct BackupSummary: Codable, Sendable {
    public var status: String
    public var archive: String
    public var database: String
    public var tables: Int
    public var units: Int
    public var rows: Int64
    public var rawBytes: Int64
    public var archiveBytes: Int64
    public var seconds: Double
    public var snapshotTime: String
    public var walLSN: String
    public var manifest: Manifest?
    /// What went wrong after the archive was complete (a metrics file not written).
    public var warnings: [String]?

    enum CodingKeys: String, CodingKey {
        case status, archive, database, tables, units, rows, rawBytes, archiveBytes, seconds, snapshotTime, walLSN, warnings
    }
}

public struct BackupError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A consistent, parallel backup:
///
/// 1. The leader opens a REPEATABLE READ transaction, reads the catalog (which
///    takes its snapshot), locks every selected table ACCESS SHARE (waiting at
///    most --lock-wait-timeout), checks no table changed between its snapshot and
///    its lock, and exports the snapshot.
/// 2. `--jobs` workers, each on its own thread and connection, import that
///    snapshot and stream units (a table, a partition, or a ctid range of a big
///    one), largest first, through `COPY ... TO STDOUT` → row digest → zstd →
///    SHA-256 → a member file (zstd on a thread of the unit's own from its
///    second buffer on, see `writeUnit`). Memory per worker: one row, two
///    512 KiB buffers and zstd's window.
/// 3. pg_dump, given the same snapshot, dumps the schema (custom format), and
///    pg_restore writes its pre-data and post-data scripts.
/// 4. manifest.json is written last; everything is fsynced; the folder (or the
///    tar made from it) is renamed into place. Until then nothing exists under
///    the final name.
public enum BackupEngine {
    public static func run(_ requested: BackupOptions) async throws -> BackupSummary {
        let started = Date()
        // Where members go while the backup runs: for a directory archive, a
        // hidden sibling that is renamed at the end; for a file, a spool folder.
        // Every path is checked before connecting. An --output gets its staging
        // folder now; a repository's name needs the database's name, which the
        // leader reports, so it is claimed once the leader is prepared.
        var early: (staging: String, output: String)?
        if let repository = requested.repository {
            _ = try await Blocking.run("pgvault-backup-setup") { try Repository(path: repository) }
        } else {
            early = try await Blocking.run("pgvault-backup-setup") { try stagingFolder(for: requested) }
        }
        var stagingPath = early?.staging
        var published = false
        if let stagingPath { PartialOutputs.register(stagingPath) }
        defer {
            if let stagingPath {
                if !published { Files.removeTree(stagingPath) }
                PartialOutputs.forget(stagingPath)
            }
        }

        let leader = try await Blocking.run("pgvault-backup-leader") {
            try PGConnection(conninfo: requested.conninfo, applicationName: "pgvault backup")
        }
        let plan = try await Blocking.run("pgvault-backup-leader", on: leader) { try prepare($0, requested) }
        var named = requested
        if let repository = requested.repository {
            named.output = Repository(checked: repository).newBackupPath(database: plan.database, at: started, form: requested.form)
            named.uniqueName = true
            let claimed = named
            early = try await Blocking.run("pgvault-backup-setup") { try stagingFolder(for: claimed) }
            stagingPath = early?.staging
            if let stagingPath { PartialOutputs.register(stagingPath) }
        }
        guard case let (staging, output)? = early else { throw BackupError("no staging folder was made") }
        named.output = output
        let options = named

        let units = options.schemaOnly ? [] : planUnits(plan.selected, splitBytes: options.splitBytes, binary: options.binaryCopy)
        let monitor = ProgressMonitor(total: units.count, estimatedBytes: units.reduce(0) { $0 + $1.estimatedBytes }, started: started)
        let reporter = options.progress.map { callback in
            Task.detached {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    callback(monitor.snapshot())
                }
            }
        }
        defer { reporter?.cancel() }

        // Data and schema in parallel: workers stream units while pg_dump runs.
        let snapshot = plan.facts.snapshotID
        async let schemaMember = dumpSchema(options, serverMajor: leader.serverMajorVersion, serverVersion: plan.facts.server.version, snapshot: snapshot, selected: plan.selected, relations: plan.relations, staging: staging)
        let done = try await runWorkers(options, units: units, snapshot: snapshot, staging: staging, monitor: monitor)
        let schema = try await schemaMember
        // The server's part can end before a signal is noticed by a worker
        // (compression, pg_dump and the writes run on after the COPYs):
        // nothing is committed or published once the run is cancelled.
        try Task.checkCancellation()
        try await Blocking.run("pgvault-backup-leader", on: leader) { try $0.execute("COMMIT") }
        TestPause.here("backup: the server's part is done", variable: "PGVAULT_TEST_BACKUP_PAUSE_AFTER_SERVER")

        var tables = plan.selected.map(\.table)
        for i in tables.indices {
            tables[i].rows = done.filter { $0.schema == tables[i].schema && $0.table == tables[i].name }.reduce(0) { $0 + $1.rows }
        }
        let facts = plan.facts
        let manifest = Manifest(
            startedAt: ISO8601.format(started), completedAt: ISO8601.format(Date()),
            server: facts.server,
            database: Manifest.Database(name: plan.database, encoding: facts.encoding, collate: facts.collate, ctype: facts.ctype),
            snapshot: Manifest.Snapshot(id: facts.snapshotID, time: facts.time, walLSN: facts.walLSN, walSegment: facts.walSegment),
            migrations: plan.migrations.isEmpty ? nil : plan.migrations,
            copyFormat: Manifest.copyFormatSummary(done),
            copySettings: CopySession.asDictionary,
            compression: Manifest.Compression(level: Int(options.compressionLevel)),
            selection: Manifest.Selection(tables: options.tables, excludeTables: options.excludeTables, schemaOnly: options.schemaOnly, dataOnly: options.dataOnly),
            schema: schema, sequences: plan.sequences, tables: tables,
            units: done.sorted { $0.id < $1.id })
        let archiveBytes = try await Blocking.run("pgvault-backup-publish") {
            try Cancellation.check()
            let manifestFile = try OutputFile(creating: staging + "/" + Manifest.memberName)
            try manifestFile.write(try manifest.encoded())
            try manifestFile.close()
            try Files.syncDirectory(staging + "/data")
            try Files.syncDirectory(staging + "/schema")
            try Files.syncDirectory(staging)
            let bytes = try publish(staging: staging, manifest: manifest, options: options)
            if options.form == .file { Files.removeTree(staging) }
            return bytes
        }
        published = true
        let totals = monitor.snapshot()
        return BackupSummary(
            status: "complete", archive: options.output, database: plan.database, tables: tables.count, units: done.count,
            rows: totals.rows, rawBytes: totals.rawBytes, archiveBytes: archiveBytes,
            seconds: Date().timeIntervalSince(started), snapshotTime: facts.time, walLSN: facts.walLSN, manifest: manifest)
    }

    /// What the leader learns before the workers start.
    struct Plan: Sendable {
        var database: String
        var relations: [Catalog.Relation]
        var selected: [Catalog.Relation]
        var facts: SnapshotFacts
        var sequences: [Manifest.SequenceValue]
        var migrations: [Int64]
    }

    /// The leader's part, on its own thread: backup lock, snapshot, catalog,
    /// table locks, drift check, exported snapshot, sequences. Leaves the
    /// leader's transaction open (the snapshot lives as long as it does).
    static func prepare(_ leader: PGConnection, _ options: BackupOptions) throws -> Plan {
        try CopySession.apply(leader)
        let database = try leader.query("SELECT current_database()").firstRow().string(0)
        try acquireBackupLock(leader, database: database)
        try leader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        // Reading sizes takes locks too: bound every wait by --lock-wait-timeout.
        try leader.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
        let relations: [Catalog.Relation]
        do {
            relations = try Catalog.relations(leader)
        } catch let error as PGError where error.sqlState == PGError.lockNotAvailable {
            try? leader.execute("ROLLBACK")
            let held = (try? leader.query("""
                SELECT string_agg(DISTINCT n.nspname || '.' || c.relname, ', ') FROM pg_locks l
                JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted
                  AND l.pid <> pg_backend_pid() AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """).scalar) ?? nil
            throw BackupError("could not read the catalog within --lock-wait-timeout \(options.lockWaitTimeout): \(held.map { "table(s) \($0) are" } ?? "a table is") locked exclusively by another session (an ALTER TABLE, DROP or TRUNCATE?). Retry later or raise --lock-wait-timeout.")
        }
        let selected = try select(relations, options: options)
        if selected.isEmpty { throw BackupError("no table matches the selection (--table/--exclude-table)") }
        try lockTables(leader, selected, timeout: options.lockWaitTimeout)
        try checkNoDrift(options.conninfo, snapshotView: selected, allRelations: relations)
        let facts = try snapshotFacts(leader)
        let sequences = try readSequences(leader, schemas: Set(selected.map(\.table.schema)))
        let migrations = (try? Migrator.applied(leader).filter(\.success).map(\.version)) ?? []
        return Plan(database: database, relations: relations, selected: selected, facts: facts, sequences: sequences, migrations: migrations)
    }

    // MARK: - Locking and consistency

    /// At most one backup of a database at a time, across machines: a session
    /// advisory lock held by the leader until it disconnects.
    static func acquireBackupLock(_ conn: PGConnection, database: String) throws {
        try AdvisoryLock(job: "backup", database: database).acquire(conn) { who in
            BackupError("another pgvault backup of database '\(database)' is running\(who); two backups of one database never run at once. Wait for it to finish.")
        }
    }

    static func lockTables(_ conn: PGConnection, _ relations: [Catalog.Relation], timeout: String) throws {
        // One statement per table so a failure names the table that could not be locked.
        for r in relations {
            do {
                try conn.execute("LOCK TABLE \(SQL.qualified(r.table.schema, r.table.name)) IN ACCESS SHARE MODE")
            } catch let error as PGError where error.sqlState == PGError.lockNotAvailable {
                throw BackupError("could not lock table \(r.table.qualifiedName) within --lock-wait-timeout \(timeout): another session holds a conflicting lock (an ALTER TABLE, DROP or TRUNCATE?). Retry later or raise --lock-wait-timeout.")
            } catch let error as PGError where error.sqlState == PGError.undefinedTable {
                throw BackupError("table \(r.table.qualifiedName) was dropped while the backup was starting; run the backup again")
            }
        }
        try conn.execute("SET LOCAL lock_timeout = 0")
    }

    /// The catalog was read under the snapshot, the locks came after it: a table
    /// altered, rewritten, dropped, or given a new partition in between would
    /// make the archive inconsistent. Compare against a fresh look and refuse.
    static func checkNoDrift(_ conninfo: String, snapshotView: [Catalog.Relation], allRelations: [Catalog.Relation]) throws {
        let fresh = try PGConnection(conninfo: conninfo, applicationName: "pgvault backup (check)")
        let now = try Catalog.relations(fresh)
        let nowByName = Dictionary(now.map { ($0.table.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        for r in snapshotView {
            guard let current = nowByName[r.table.qualifiedName] else {
                throw BackupError("table \(r.table.qualifiedName) was dropped while the backup was starting; run the backup again")
            }
            if current.relfilenode != r.relfilenode || current.table.columns != r.table.columns {
                throw BackupError("table \(r.table.qualifiedName) was altered while the backup was starting (columns or storage changed after the snapshot); run the backup again")
            }
        }
        let parents = Set(snapshotView.filter { $0.table.kind == "partitioned" }.map(\.table.qualifiedName))
        let before = Set(allRelations.filter { r in r.table.parentName.map { parents.contains("\(r.table.parentSchema!).\($0)") } ?? false }.map(\.table.qualifiedName))
        let after = Set(now.filter { r in r.table.parentName.map { parents.contains("\(r.table.parentSchema!).\($0)") } ?? false }.map(\.table.qualifiedName))
        if before != after {
            let added = after.subtracting(before).sorted(), removed = before.subtracting(after).sorted()
            throw BackupError("partitions changed while the backup was starting (added: \(added), removed: \(removed)); run the backup again")
        }
    }

    struct SnapshotFacts: Sendable {
        var snapshotID: String
        var time: String
        var walLSN: String
        var walSegment: String?
        var server: Manifest.Server
        var encoding: String
        var collate: String?
        var ctype: String?
    }

    static func snapshotFacts(_ conn: PGConnection) throws -> SnapshotFacts {
        let r = try conn.query("""
            SELECT pg_export_snapshot(),
                   to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
                   CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
                   current_setting('server_version'), current_setting('server_version_num'),
                   pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                   current_setting('wal_segment_size')
            FROM pg_database d WHERE d.datname = current_database()
            """).firstRow()
        // pg_control_* need pg_monitor or superuser; leave them out rather than fail.
        let sysid = (try? conn.query("SELECT system_identifier::text FROM pg_control_system()").scalar) ?? nil
        let timeline = (try? conn.query("SELECT timeline_id FROM pg_control_checkpoint()").scalar).flatMap { $0.flatMap { Int($0) } }
        let segBytes = parseSize(try r.string(9))
        return SnapshotFacts(
            // The replay LSN is NULL on a standby that has replayed nothing yet.
            snapshotID: try r.string(0), time: try r.string(1), walLSN: try r.optionalString(2) ?? "", walSegment: try r.optionalString(3),
            server: Manifest.Server(
                version: try r.string(4), versionNumber: try r.int(5), systemIdentifier: sysid ?? "unknown",
                timeline: timeline, walSegmentSize: segBytes),
            encoding: try r.string(6), collate: try r.optionalString(7), ctype: try r.optionalString(8))
    }

    static func parseSize(_ text: String) -> Int? {
        let units: [(String, Int)] = [("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return Int(text.dropLast(suffix.count)).map { $0 * factor }
        }
        return Int(text)
    }

    static func readSequences(_ conn: PGConnection, schemas: Set<String>) throws -> [Manifest.SequenceValue] {
        let seqs = try conn.query("""
            SELECT n.nspname, c.relname,
                   (SELECT format('%I.%I(%I)', tn.nspname, t.relname, a.attname)
                    FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                    WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'S' ORDER BY 1, 2
            """)
        var out: [Manifest.SequenceValue] = []
        for r in seqs.rows {
            let schema = try r.string(0), name = try r.string(1)
            guard schemas.contains(schema) else { continue }
            let v = try conn.query("SELECT last_value::text, is_called FROM \(SQL.qualified(schema, name))").firstRow()
            out.append(Manifest.SequenceValue(
                schema: schema, name: name, lastValue: try v.string(0), isCalled: try v.bool(1), ownedBy: try r.optionalString(2)))
        }
        return out
    }

    // MARK: - Selection and units

    static func select(_ relations: [Catalog.Relation], options: BackupOptions) throws -> [Catalog.Relation] {
        // pgvault's own bookkeeping tables are never part of a backup's data.
        let candidates = relations.filter { !$0.table.schema.hasPrefix("pgvault") }
        func matches(_ r: Catalog.Relation, _ patterns: [String]) -> Bool {
            patterns.contains { p in
                Glob.matches(p, r.table.qualifiedName) || Glob.matches(p, r.table.name)
            }
        }
        func ancestors(_ r: Catalog.Relation) -> [Catalog.Relation] {
            var out: [Catalog.Relation] = []
            var current = r
            while let ps = current.table.parentSchema, let pn = current.table.parentName,
                  let parent = candidates.first(where: { $0.table.schema == ps && $0.table.name == pn }) {
                out.append(parent)
                current = parent
            }
            return out
        }
        // A partition is selected when it or an ancestor matches.
        let included = candidates.filter { r in
            options.tables.isEmpty || matches(r, options.tables) || ancestors(r).contains { matches($0, options.tables) }
        }
        let excluded = included.filter { r in
            matches(r, options.excludeTables) || ancestors(r).contains { matches($0, options.excludeTables) }
        }
        let excludedNames = Set(excluded.map(\.table.qualifiedName))
        for pattern in options.tables where !candidates.contains(where: { matches($0, [pattern]) }) {
            throw BackupError("--table '\(pattern)' matches no table in the database; check the name (patterns are schema.table or table, with * and ?)")
        }
        var selected = included.filter { !excludedNames.contains($0.table.qualifiedName) }
        // A selected partition brings its parents, so the archive knows where it belongs.
        var names = Set(selected.map(\.table.qualifiedName))
        for r in selected {
            for a in ancestors(r) where names.insert(a.table.qualifiedName).inserted { selected.append(a) }
        }
        return Catalog.orderParentsFirst(selected)
    }

    struct PlannedUnit: Sendable {
        var id: String
        var relation: Catalog.Relation
        var fromPage: Int64?
        var toPage: Int64?
        var estimatedBytes: Int64
        var format: CopyFormat
    }

    /// One unit per table or partition with data, big ones split into ctid page
    /// ranges; largest first so the longest unit starts first.
    static func planUnits(_ selected: [Catalog.Relation], splitBytes: Int64, binary: Bool) -> [PlannedUnit] {
        var planned: [(Catalog.Relation, Int64?, Int64?, Int64)] = []
        for r in selected where r.table.kind != "partitioned" {
            let blockSize = r.pages > 0 ? r.bytes / r.pages : 8192
            if r.bytes > splitBytes && splitBytes > 0 {
                let pagesPer = max(1, splitBytes / max(blockSize, 1))
                var from: Int64 = 0
                while from < r.pages {
                    let to = from + pagesPer
                    // The last range is open-ended: pages added after the size was read.
                    planned.append((r, from, to >= r.pages ? nil : to, min(pagesPer, r.pages - from) * blockSize))
                    from = to
                }
            } else {
                planned.append((r, nil, nil, r.bytes))
            }
        }
        let ordered = planned.sorted { $0.3 > $1.3 }
        return ordered.enumerated().map { i, p in
            PlannedUnit(id: String(format: "u%05d", i + 1), relation: p.0, fromPage: p.1, toPage: p.2, estimatedBytes: p.3,
                        format: binary && p.0.binaryCopy ? .binary : .text)
        }
    }

    static func copyStatement(_ unit: PlannedUnit, columns: [String]) -> String {
        let t = SQL.qualified(unit.relation.table.schema, unit.relation.table.name)
        let cols = columns.map(SQL.ident).joined(separator: ", ")
        if unit.fromPage == nil && unit.toPage == nil {
            return "COPY \(t) (\(cols)) TO STDOUT\(unit.format.options())"
        }
        var conditions = ["ctid >= '(\(unit.fromPage ?? 0),0)'::tid"]
        if let to = unit.toPage { conditions.append("ctid < '(\(to),0)'::tid") }
        return "COPY (SELECT \(cols) FROM ONLY \(t) WHERE \(conditions.joined(separator: " AND "))) TO STDOUT\(unit.format.options())"
    }

    // MARK: - Workers

    static func runWorkers(
        _ options: BackupOptions, units: [PlannedUnit], snapshot: String, staging: String, monitor: ProgressMonitor
    ) async throws -> [Manifest.Unit] {
        guard !units.isEmpty else { return [] }
        let queue = UnitQueue(units)
        let jobs = max(1, min(options.jobs, units.count))
        return try await withThrowingTaskGroup(of: [Manifest.Unit].self) { group in
            for w in 0..<jobs {
                let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault backup worker \(w + 1)")
                group.addTask {
                    try await Blocking.run("pgvault-backup-\(w + 1)", on: conn) { conn in
                        try CopySession.apply(conn)
                        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        try conn.execute("SET TRANSACTION SNAPSHOT \(SQL.literal(snapshot))")
                        var finished: [Manifest.Unit] = []
                        while let unit = queue.next() {
                            try Cancellation.check()
                            finished.append(try dumpUnit(unit, conn: conn, staging: staging, level: options.compressionLevel, monitor: monitor))
                        }
                        try conn.execute("COMMIT")
                        return finished
                    }
                }
            }
            var all: [Manifest.Unit] = []
            do {
                for try await part in group { all += part }
            } catch {
                queue.stop()
                group.cancelAll()
                throw error
            }
            return all
        }
    }

    /// COPY one planned unit into its member, reporting progress to the monitor.
    static func dumpUnit(_ unit: PlannedUnit, conn: PGConnection, staging: String, level: Int32, monitor: ProgressMonitor) throws -> Manifest.Unit {
        let columns = unit.relation.table.columns.filter { !$0.generated }.map(\.name)
        do {
            let written = try writeUnit(
                id: unit.id, schema: unit.relation.table.schema, table: unit.relation.table.name, columns: columns,
                sql: copyStatement(unit, columns: columns), format: unit.format, conn: conn, staging: staging, level: level,
                onFlush: { rows, raw in monitor.add(rows: rows, raw: raw) })
            monitor.finishUnit(compressed: written.compressedBytes)
            var result = written
            result.fromPage = unit.fromPage
            result.toPage = unit.toPage
            return result
        } catch let error as PGError {
            // Our own cancel request (a signal, a failed sibling) is not a failure of this COPY.
            if error.sqlState == PGError.queryCanceled, Cancellation.isCancelled { throw CancellationError() }
            throw BackupError("COPY of \(unit.relation.table.qualifiedName) failed: \(error)")
        }
    }

    /// The size of a unit's buffers. Measured against 1 MiB on the default
    /// benchmark database: the same backup time, and about 5 MiB less peak
    /// RSS for a two-job backup (docs/benchmarks.md).
    static let unitBufferBytes = 1 << 19

    /// Runs `sql` (a `COPY ... TO STDOUT` in `format`) into the member
    /// `data/<id>.copy.zst`: rows → row digest → 512 KiB buffer → zstd → file,
    /// with the SHA-256 of what is written. The member holds the stream as the
    /// server sent it (for binary, its header and end marker too).
    ///
    /// From the second buffer on, zstd and the writes run on a thread of the
    /// unit's own (`JobThread`) while this one goes on reading: the server is
    /// not kept waiting while a buffer is compressed (a Unix socket holds only
    /// about 200 KiB). A unit under one buffer is compressed here, at its end.
    /// Memory: one row, two buffers and zstd's state. Cold storage uses it for
    /// its subset units too.
    public static func writeUnit(
        id: String, schema: String, table: String, columns: [String], sql: String, format: CopyFormat = .text, conn: PGConnection,
        staging: String, level: Int32, onFlush: (_ rows: Int64, _ rawBytes: Int64) -> Void = { _, _ in }
    ) throws -> Manifest.Unit {
        let member = "data/\(id).copy.zst"
        let stream = try CompressedMember(path: staging + "/" + member, level: level)
        var pipeline: JobThread<CompressedMember>?
        defer { pipeline?.abort() }
        var digest = RowDigest()
        var reader = CopyRowReader(format)
        let capacity = unitBufferBytes
        var buffer = CompressedMember.emptyBuffer(capacity)
        var raw: Int64 = 0
        var rowsSinceFlush: Int64 = 0
        func flush(last: Bool) throws {
            try Cancellation.check()
            raw += Int64(buffer.count)
            onFlush(rowsSinceFlush, Int64(buffer.count))
            rowsSinceFlush = 0
            if pipeline == nil, !last {
                pipeline = try JobThread(name: "pgvault-zstd-\(id)", maxQueuedBytes: capacity + 64 * 1024) { stream }
            }
            if let pipeline {
                // The buffer goes over whole (this side lets go of it, so the
                // job thread can empty it in place); the queue takes one buffer
                // at a time, so once it has room the previous one is a spare:
                // two buffers in all.
                let bytes = buffer.count
                stream.hand(buffer)
                buffer = []
                try pipeline.enqueue(bytes: bytes) { try $0.compressNext() }
                buffer = stream.spare() ?? CompressedMember.emptyBuffer(capacity)
            } else {
                try buffer.withUnsafeBytes { try stream.compress($0) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try conn.copyOut(sql) { message in
            if let row = try reader.row(in: message) {
                digest.add(row: row)
                rowsSinceFlush += 1
            }
            buffer.append(contentsOf: message)
            if buffer.count >= capacity { try flush(last: false) }
        }
        try flush(last: true)
        if let pipeline {
            try pipeline.close { try $0.finish() }
        } else {
            try stream.finish()
        }
        return Manifest.Unit(
            id: id, schema: schema, table: table, member: member, columns: columns, fromPage: nil, toPage: nil,
            rows: digest.rows, rawBytes: raw, compressedBytes: stream.file.bytesWritten, sha256: try stream.sha.hexDigest(),
            rowDigest: digest.hex, copyFormat: format)
    }

    // MARK: - Schema

    static func dumpSchema(
        _ options: BackupOptions, serverMajor: Int, serverVersion: String, snapshot: String, selected: [Catalog.Relation],
        relations: [Catalog.Relation], staging: String
    ) async throws -> Manifest.Schema? {
        if options.dataOnly { return nil }
        // A full backup dumps the whole schema (functions, views, types...); a
        // selective one names its tables.
        let whole = selected.count == relations.filter({ !$0.table.schema.hasPrefix("pgvault") }).count
        var tableArgs: [String] = []
        if !whole {
            for r in selected {
                tableArgs += ["--table", "\"\(r.table.schema.replacingOccurrences(of: "\"", with: "\"\""))\".\"\(r.table.name.replacingOccurrences(of: "\"", with: "\"\""))\""]
            }
        }
        let conninfo = options.conninfo
        let selectionArgs = tableArgs
        let pgBin = options.pgBin
        return try await Blocking.run("pgvault-pg_dump") {
            let tools = try PGTools.locate(serverMajor: serverMajor, serverVersion: serverVersion, pgBin: pgBin)
            // One pg_dump reads the catalog once into a custom-format file;
            // pg_restore writes each section's script from that file, with no
            // database (the same text `pg_dump --section` prints, without a
            // second read of the catalog).
            let dump = staging + "/schema/schema.dump"
            defer { unlink(dump) }
            let args = ["--schema-only", "--format=custom", "--compress=0", "--file=\(dump)", "--snapshot=\(snapshot)", "--no-password"]
                + selectionArgs
            let result = try tools.run("pg_dump", conninfo: conninfo, arguments: args)
            guard result.status == 0 else {
                throw BackupError("pg_dump \(tools.versionString) (\(tools.binDir)) failed to dump the schema: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            var members: [Manifest.Member] = []
            for section in ["pre-data", "post-data"] {
                let plain = staging + "/schema/\(section).sql"
                defer { unlink(plain) }
                let result = try tools.run("pg_restore", conninfo: nil, arguments: ["--section=\(section)", "--file=\(plain)", dump])
                guard result.status == 0 else {
                    throw BackupError("pg_restore \(tools.versionString) (\(tools.binDir)) failed to write the \(section) schema: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
                members.append(try compressFile(plain, member: "schema/\(section).sql.zst", staging: staging))
            }
            return Manifest.Schema(pgDumpVersion: tools.versionString, preData: members[0], postData: members[1])
        }
    }

    static func compressFile(_ path: String, member: String, staging: String) throws -> Manifest.Member {
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? input.close() }
        // Schema text is small; a modest level keeps zstd's memory (and so peak RSS) low.
        let out = try CompressedMember(path: staging + "/" + member, level: 6)
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            try Cancellation.check()
            try chunk.withUnsafeBytes { try out.compress($0) }
        }
        try out.finish()
        return Manifest.Member(member: member, bytes: out.file.bytesWritten, sha256: try out.sha.hexDigest())
    }

    // MARK: - Output

    /// Creates the staging folder; returns it and the archive's final path
    /// (in a repository, the name ``RepositoryNames/claim(_:)`` found free).
    static func stagingFolder(for options: BackupOptions) throws -> (staging: String, output: String) {
        var output = options.output
        let path: String
        if options.output == "-" {
            path = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/pgvault-spool.partial-\(getpid())"
            Files.removeTree(path)
            try Files.makeDirectory(path)
        } else {
            if options.uniqueName {
                try OutputPath.checkFolder(of: options.output, what: "--repo")
                (output, path) = try RepositoryNames.claim(options.output)
            } else {
                try OutputPath.checkNew(options.output, what: "--output")
                let dir = (options.output as NSString).deletingLastPathComponent
                let name = (options.output as NSString).lastPathComponent
                path = (dir.isEmpty ? "." : dir) + "/." + name + ".partial-\(getpid())"
                Files.removeTree(path)
                try Files.makeDirectory(path)
            }
        }
        try Files.makeDirectory(path + "/data")
        try Files.makeDirectory(path + "/schema")
        return (path, output)
    }

    /// Directory form: rename the staging folder. File form: write a tar of its
    /// members (manifest.json last) under a temporary name, fsync, rename; or
    /// stream the tar to standard output. Returns the archive's size.
    static func publish(staging: String, manifest: Manifest, options: BackupOptions) throws -> Int64 {
        var members = manifest.units.map { ($0.member, $0.compressedBytes) }
        if let schema = manifest.schema {
            members.insert((schema.postData.member, schema.postData.bytes), at: 0)
            members.insert((schema.preData.member, schema.preData.bytes), at: 0)
        }
        let manifestSize = (try FileManager.default.attributesOfItem(atPath: staging + "/" + Manifest.memberName)[.size] as? NSNumber)?.int64Value ?? 0
        members.append((Manifest.memberName, manifestSize))
        let total = members.reduce(0) { $0 + $1.1 }
        switch (options.form, options.output) {
        case (.directory, _):
            try PartialOutputs.publishing(staging) { try Files.publish(staging, as: options.output) }
            return total
        case (.file, "-"):
            let writer = try ArchiveWriter(fileDescriptor: 1, format: .tarPax, label: "standard output")
            try writeTar(writer, staging: staging, members: members)
            return total
        case (.file, _):
            let partial = staging + ".tar"
            PartialOutputs.register(partial)
            defer { PartialOutputs.forget(partial) }
            let writer = try ArchiveWriter(path: partial, format: .tarPax)
            do {
                try writeTar(writer, staging: staging, members: members)
                try PartialOutputs.publishing(partial) { try Files.publish(partial, as: options.output) }
            } catch {
                unlink(partial)
                throw error
            }
            return (try FileManager.default.attributesOfItem(atPath: options.output)[.size] as? NSNumber)?.int64Value ?? total
        }
    }

    static func writeTar(_ writer: ArchiveWriter, staging: String, members: [(String, Int64)]) throws {
        for (member, size) in members {
            try Cancellation.check()
            let source = DirectoryArchive(staging)
            try writer.addFile(path: member, size: size) { write in
                try source.readMember(member) { try write($0) }
            }
        }
        try writer.close()
    }
}

/// Hands out units to workers, largest first; stops handing out after a failure.
final class UnitQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var units: [BackupEngine.PlannedUnit]
    private var index = 0
    private var stopped = false

    init(_ units: [BackupEngine.PlannedUnit]) { self.units = units }

    func next() -> BackupEngine.PlannedUnit? {
        lock.withLock {
            guard !stopped, index < units.count else { return nil }
            defer { index += 1 }
            return units[index]
        }
    }

    func stop() { lock.withLock { stopped = true } }
}

/// Totals shared by the workers, read by the progress reporter.
final class ProgressMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var state: BackupProgress
    private let started: Date

    init(total: Int, estimatedBytes: Int64, started: Date) {
        self.started = started
        state = BackupProgress(unitsDone: 0, unitsTotal: total, rows: 0, rawBytes: 0, compressedBytes: 0, estimatedBytes: estimatedBytes, elapsed: 0)
    }

    func add(rows: Int64, raw: Int64) {
        lock.withLock {
            state.rows += rows
            state.rawBytes += raw
        }
    }

    func finishUnit(compressed: Int64) {
        lock.withLock {
            state.unitsDone += 1
            state.compressedBytes += compressed
        }
    }

    func snapshot() -> BackupProgress {
        lock.withLock {
            var s = state
            s.elapsed = Date().timeIntervalSince(started)
            return s
        }
    }
}

public enum ISO8601 {
    public static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    public static func parse(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}

/// Shell-style patterns: `*` any run of characters, `?` one character.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, starP = -1, starT = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == "*" {
                starP = pi; starT = ti; pi += 1
            } else if starP >= 0 {
                pi = starP + 1; starT += 1; ti = starT
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// A member being written: zstd into a file, with the SHA-256 of the
/// compressed bytes (data units and the schema scripts).
/// `BackupEngine.writeUnit` hands it to a `JobThread`; its
/// compressor and file are used by one thread at a time (the reader before and
/// after, the job thread in between, ordered by the job thread's lock), and
/// its buffers move between the two under its own lock, hence
/// `@unchecked Sendable`. Compressed buffers come back emptied, as spares for
/// the reader to fill again, so the reader does not allocate a new one each time.
final class CompressedMember: @unchecked Sendable {
    let file: OutputFile
    let sha: SHA2
    private let compressor: ZstdCompressor
    private let lock = NSLock()
    // Guarded by `lock`.
    private var pending: [[UInt8]] = []
    private var spares: [[UInt8]] = []

    init(path: String, level: Int32) throws {
        sha = try SHA2(.sha256)
        file = try OutputFile(creating: path)
        compressor = try ZstdCompressor(level: level, checksum: true)
    }

    static func emptyBuffer(_ capacity: Int) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(capacity + 64 * 1024)
        return buffer
    }

    func compress(_ bytes: UnsafeRawBufferPointer) throws {
        try compressor.compress(bytes, sink: write)
    }

    /// Compressed bytes: into the digest and the file.
    private func write(_ out: UnsafeRawBufferPointer) throws {
        try sha.update(out)
        try file.write(out)
    }

    /// Queues a full buffer for `compressNext()`.
    func hand(_ buffer: [UInt8]) {
        lock.withLock { pending.append(buffer) }
    }

    /// Compresses the oldest handed buffer, then keeps it as a spare.
    func compressNext() throws {
        guard var chunk = lock.withLock({ pending.isEmpty ? nil : pending.removeFirst() }) else { return }
        try chunk.withUnsafeBytes { try compress($0) }
        chunk.removeAll(keepingCapacity: true)
        lock.lock()
        if spares.count < 2 { spares.append(consume chunk) }
        lock.unlock()
    }

    /// An emptied buffer that has been compressed, if one is ready.
    func spare() -> [UInt8]? {
        lock.withLock { spares.popLast() }
    }

    /// Ends the zstd frame, then fsyncs and closes the file.
    func finish() throws {
        try compressor.finish(sink: write)
        try file.close()
    }
}
