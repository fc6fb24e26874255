import Foundation
import PGClient

extension BackupEngine {
    /// What the leader learns before the workers start.
    struct Plan: Sendable {
        var database: String
        var relations: [Catalog.Relation]
        var selected: [Catalog.Relation]
        var facts: SnapshotFacts
        var sequences: [Manifest.SequenceValue]
        var migrations: [Int64]
    }

    /// What the leader knows once its snapshot is exported: enough to start
    /// pg_dump on the same snapshot.
    struct Begun: Sendable {
        var database: String
        var facts: SnapshotFacts
    }

    /// The leader's first part, on its own thread: backup lock, snapshot,
    /// exported snapshot. Leaves the leader's transaction open (the snapshot
    /// lives as long as it does). pg_dump can start from here, beside
    /// ``readCatalog(_:_:_:)``; ``lockAndCheck(_:_:_:)`` comes before the copies.
    static func begin(_ leader: PGConnection, _ options: BackupOptions) throws -> Begun {
        try CopySession.apply(leader)
        let database = try leader.query("SELECT current_database()").firstRow().string(0)
        try acquireBackupLock(leader, database: database)
        try leader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        // Reading sizes takes locks too: bound every wait by --lock-wait-timeout.
        try leader.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
        // The transaction's first query takes the snapshot that the catalog
        // read below, pg_dump and the workers all share.
        return Begun(database: database, facts: try snapshotFacts(leader))
    }

    /// The leader's catalog, in its snapshot, and the tables the options select.
    static func readCatalog(_ leader: PGConnection, _ begun: Begun, _ options: BackupOptions) throws -> Plan {
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
                """).firstRow().optionalString(0)) ?? nil
            throw PGVaultError.server("could not read the catalog within --lock-wait-timeout \(options.lockWaitTimeout): \(held.map { "table(s) \($0) are" } ?? "a table is") locked exclusively by another session (an ALTER TABLE, DROP or TRUNCATE?). Retry later or raise --lock-wait-timeout", error)
        }
        let selected = try select(relations, options: options)
        if selected.isEmpty { throw PGVaultError(.server, "no table matches the selection (--table/--exclude-table)") }
        return Plan(database: begun.database, relations: relations, selected: selected, facts: begun.facts, sequences: [], migrations: [])
    }

    /// The leader's second part, while pg_dump reads the schema: the table
    /// locks, the drift check, the sequences. pg_dump reads the catalog in
    /// the same snapshot and takes ACCESS SHARE locks of its own; what
    /// changed between the snapshot and these locks fails the backup here,
    /// as it did when pg_dump started after them (which put the locks and the
    /// drift check, two catalog reads at thousands of partitions, on the
    /// schema's critical path).
    static func lockAndCheck(_ leader: PGConnection, _ plan: Plan, _ options: BackupOptions) throws -> Plan {
        TestPause.here("backup: the catalog is read, the tables not yet locked", variable: "PGVAULT_TEST_BACKUP_PAUSE_BEFORE_LOCK")
        try lockTables(leader, plan.selected, timeout: options.lockWaitTimeout)
        // Before the copies, not beside them: run beside, it saved about 5 %
        // of a backup of 1,000 partitions and added 2-5 MiB to its peak RSS.
        try checkNoDrift(options.conninfo, snapshotView: plan.selected, allRelations: plan.relations)
        var plan = plan
        plan.sequences = try readSequences(leader, schemas: Set(plan.selected.map(\.table.schema)))
        plan.migrations = (try? Migrator.applied(leader).filter(\.success).map(\.version)) ?? []
        return plan
    }

    // MARK: - Locking and consistency

    /// At most one backup of a database at a time, across machines: a session
    /// advisory lock held by the leader until it disconnects.
    static func acquireBackupLock(_ conn: PGConnection, database: String) throws {
        try AdvisoryLock(job: "backup", database: database).acquire(conn) { who in
            PGVaultError(.server, "another pgvault backup of database '\(database)' is running\(who); two backups of one database never run at once. Wait for it to finish.")
        }
    }

    /// Tables locked per LOCK TABLE statement.
    static let lockBatch = 1_000

    /// Locks the tables many per statement: a round trip per table was a cost
    /// per partition (10,000 of them at 10,000 partitions). A batch that fails
    /// is undone to its savepoint and its tables are locked one at a time, so
    /// that the error names the table (at the price of a second wait).
    static func lockTables(_ conn: PGConnection, _ relations: [Catalog.Relation], timeout: String) throws {
        for start in stride(from: 0, to: relations.count, by: lockBatch) {
            let batch = Array(relations[start..<min(start + lockBatch, relations.count)])
            try conn.execute("SAVEPOINT pgvault_lock_batch")
            do {
                try conn.execute("LOCK TABLE \(batch.map { SQL.qualified($0.table.schema, $0.table.name) }.joined(separator: ", ")) IN ACCESS SHARE MODE")
            } catch is PGError {
                try conn.execute("ROLLBACK TO SAVEPOINT pgvault_lock_batch")
                try lockOneByOne(conn, batch, timeout: timeout)
            }
            try conn.execute("RELEASE SAVEPOINT pgvault_lock_batch")
        }
        try conn.execute("SET LOCAL lock_timeout = 0")
    }

    /// One statement per table, so that a failure names the table that could not be locked.
    private static func lockOneByOne(_ conn: PGConnection, _ relations: [Catalog.Relation], timeout: String) throws {
        for r in relations {
            do {
                try conn.execute("LOCK TABLE \(SQL.qualified(r.table.schema, r.table.name)) IN ACCESS SHARE MODE")
            } catch let error as PGError where error.sqlState == PGError.lockNotAvailable {
                throw PGVaultError.server("could not lock table \(r.table.qualifiedName) within --lock-wait-timeout \(timeout): another session holds a conflicting lock (an ALTER TABLE, DROP or TRUNCATE?). Retry later or raise --lock-wait-timeout", error)
            } catch let error as PGError where error.sqlState == PGError.undefinedTable {
                throw PGVaultError.server("table \(r.table.qualifiedName) was dropped while the backup was starting; run the backup again", error)
            }
        }
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
                throw PGVaultError(.server, "table \(r.table.qualifiedName) was dropped while the backup was starting; run the backup again")
            }
            if current.relfilenode != r.relfilenode || current.table.columns != r.table.columns {
                throw PGVaultError(.server, "table \(r.table.qualifiedName) was altered while the backup was starting (columns or storage changed after the snapshot); run the backup again")
            }
        }
        let parents = Set(snapshotView.filter { $0.table.kind == "partitioned" }.map(\.table.qualifiedName))
        let before = Set(allRelations.filter { r in r.table.parentName.map { parents.contains("\(r.table.parentSchema!).\($0)") } ?? false }.map(\.table.qualifiedName))
        let after = Set(now.filter { r in r.table.parentName.map { parents.contains("\(r.table.parentSchema!).\($0)") } ?? false }.map(\.table.qualifiedName))
        if before != after {
            let added = after.subtracting(before).sorted(), removed = before.subtracting(after).sorted()
            throw PGVaultError(.server, "partitions changed while the backup was starting (added: \(added), removed: \(removed)); run the backup again")
        }
    }

    struct SnapshotFacts: Sendable {
        var snapshotID: String
        var time: String
        var walLSN: String
        var walSegment: String?
        var standby: Manifest.Standby?
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
                   current_setting('wal_segment_size'),
                   pg_is_in_recovery(), pg_last_wal_receive_lsn()::text,
                   to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM pg_database d WHERE d.datname = current_database()
            """).firstRow()
        // pg_control_* need pg_monitor or superuser; leave them out rather than fail.
        let sysid = (try? conn.query("SELECT system_identifier::text FROM pg_control_system()").firstRow().optionalString(0)) ?? nil
        let timeline = (try? conn.query("SELECT timeline_id FROM pg_control_checkpoint()").firstRow().optionalInt(0)) ?? nil
        let segBytes = parseSize(try r.string(9))
        // The replay LSN is NULL on a standby that has replayed nothing yet.
        let walLSN = try r.optionalString(2) ?? ""
        let standby = try r.bool(10)
            ? Manifest.Standby(replayLSN: walLSN, receiveLSN: try r.optionalString(11), lastReplayedCommit: try r.optionalString(12)) : nil
        return SnapshotFacts(
            snapshotID: try r.string(0), time: try r.string(1), walLSN: walLSN, walSegment: try r.optionalString(3), standby: standby,
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
}
