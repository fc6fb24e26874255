import PGClient

/// The journal of a restore, kept in the target database itself, in the
/// schema `pgvault_restore`, so that each entry commits atomically with what
/// it records:
/// - `units`: a unit's row is inserted in the transaction that loads it, so a
///   unit is either loaded and journaled or neither (a --resume never loads it
///   twice, nor skips one half-loaded);
/// - `steps`: the pre-data schema (in the transaction that applies it), each
///   post-data object, each partition created;
/// - `detached`: foreign keys dropped and triggers disabled for a --data-only
///   load, with what is needed to put them back; a row is deleted in the
///   transaction that restores its object.
/// The schema is dropped when the restore completes. pgvault's backups skip
/// schemas named `pgvault*`, and the emptiness check ignores this one.
public enum RestoreJournal {
    public static let schema = "pgvault_restore"

    public struct State: Sendable, Equatable {
        public var archiveID: String
        public var archive: String
        public var fingerprint: String
        public var startedAt: String
    }

    /// A foreign key dropped, or a trigger disabled, for a --data-only load.
    public struct Detached: Sendable, Equatable {
        public enum Kind: String, Sendable { case foreignKey = "foreign-key", trigger }
        public var position: Int
        public var kind: Kind
        public var schema: String
        public var table: String
        public var name: String
        /// A foreign key's `pg_get_constraintdef` (qualified); a trigger's
        /// original `tgenabled` (`O`, `A` or `R`).
        public var definition: String
        /// A trigger cloned from a partitioned table's (restored after its parent's).
        public var inherited: Bool

        /// Whether a foreign key was NOT VALID before the load.
        public var wasNotValid: Bool { kind == .foreignKey && definition.hasSuffix(" NOT VALID") }

        /// The statement that puts the object back. A foreign key comes back
        /// validated (NOT VALID left out): one that was not valid before (left
        /// so by an earlier partial restore, say) is validated if its rows allow.
        public var restoreSQL: String {
            let table = SQL.qualified(schema, self.table)
            switch kind {
            case .foreignKey:
                let validated = wasNotValid ? String(definition.dropLast(" NOT VALID".count)) : definition
                return "ALTER TABLE \(table) ADD CONSTRAINT \(SQL.ident(name)) \(validated)"
            case .trigger:
                let mode = ["A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"][definition] ?? "ENABLE"
                return "ALTER TABLE \(table) \(mode) TRIGGER \(SQL.ident(name))"
            }
        }

        /// The statement that takes it away for the load.
        public var detachSQL: String {
            let table = SQL.qualified(schema, self.table)
            switch kind {
            case .foreignKey: return "ALTER TABLE \(table) DROP CONSTRAINT \(SQL.ident(name))"
            case .trigger: return "ALTER TABLE \(table) DISABLE TRIGGER \(SQL.ident(name))"
            }
        }
    }

    static var q: String { SQL.ident(schema) }

    public static func exists(_ conn: PGConnection) throws -> Bool {
        try conn.query("SELECT to_regclass($1) IS NOT NULL", ["\(q).state"]).scalar == "t"
    }

    /// Creates the journal; run it in the transaction of the first change.
    static func create(_ conn: PGConnection, state: State) throws {
        try conn.execute("""
            CREATE SCHEMA \(q);
            COMMENT ON SCHEMA \(q) IS 'pgvault restore journal: dropped when the restore completes; see docs/runbooks/disaster-recovery.md';
            CREATE TABLE \(q).state (archive_id text NOT NULL, archive text NOT NULL, fingerprint text NOT NULL,
                                     started_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE \(q).units (unit_id text PRIMARY KEY, destination text NOT NULL, rows bigint NOT NULL,
                                     bytes bigint NOT NULL, finished_at timestamptz NOT NULL DEFAULT clock_timestamp());
            CREATE TABLE \(q).in_default (unit_id text NOT NULL, partition text NOT NULL, rows bigint NOT NULL,
                                          PRIMARY KEY (unit_id, partition));
            CREATE TABLE \(q).steps (step text PRIMARY KEY, finished_at timestamptz NOT NULL DEFAULT clock_timestamp());
            CREATE TABLE \(q).detached (position integer PRIMARY KEY, kind text NOT NULL, schema_name text NOT NULL,
                                        table_name text NOT NULL, name text NOT NULL, definition text NOT NULL,
                                        inherited boolean NOT NULL)
            """)
        try conn.query(
            "INSERT INTO \(q).state (archive_id, archive, fingerprint) VALUES ($1, $2, $3)",
            [state.archiveID, state.archive, state.fingerprint])
    }

    public static func state(_ conn: PGConnection) throws -> State? {
        guard try exists(conn) else { return nil }
        guard let r = try conn.query("SELECT archive_id, archive, fingerprint, started_at::text FROM \(q).state LIMIT 1").rows.first else { return nil }
        return State(archiveID: try r.string(0), archive: try r.string(1), fingerprint: try r.string(2), startedAt: try r.string(3))
    }

    /// Units loaded so far: id → rows.
    public static func finishedUnits(_ conn: PGConnection) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for r in try conn.query("SELECT unit_id, rows FROM \(q).units").rows {
            out[try r.string(0)] = try r.int64(1)
        }
        return out
    }

    public static func steps(_ conn: PGConnection) throws -> Set<String> {
        Set(try conn.query("SELECT step FROM \(q).steps").rows.compactMap { $0[0] })
    }

    static func recordUnit(_ conn: PGConnection, _ unit: Manifest.Unit, destination: String, rows: Int64) throws {
        try conn.query(
            "INSERT INTO \(q).units (unit_id, destination, rows, bytes) VALUES ($1, $2, $3, $4)",
            [unit.id, destination, String(rows), String(unit.rawBytes)])
    }

    /// Rows of a routed unit that landed in a DEFAULT partition.
    static func recordInDefault(_ conn: PGConnection, _ unit: Manifest.Unit, partition: String, rows: Int64) throws {
        try conn.query("INSERT INTO \(q).in_default (unit_id, partition, rows) VALUES ($1, $2, $3)", [unit.id, partition, String(rows)])
    }

    /// Rows routed into each DEFAULT partition, over all units loaded.
    public static func rowsInDefault(_ conn: PGConnection) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for r in try conn.query("SELECT partition, sum(rows)::bigint FROM \(q).in_default GROUP BY 1").rows {
            out[try r.string(0)] = try r.int64(1)
        }
        return out
    }

    static func recordStep(_ conn: PGConnection, _ step: String) throws {
        try conn.query("INSERT INTO \(q).steps (step) VALUES ($1) ON CONFLICT DO NOTHING", [step])
    }

    /// ``recordStep(_:_:)`` as a statement, for a script sent whole.
    static func recordStepStatement(_ step: String) -> String {
        "INSERT INTO \(q).steps (step) VALUES (\(SQL.literal(step))) ON CONFLICT DO NOTHING"
    }

    static func recordDetached(_ conn: PGConnection, _ d: Detached) throws {
        try conn.query(
            "INSERT INTO \(q).detached (position, kind, schema_name, table_name, name, definition, inherited) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [String(d.position), d.kind.rawValue, d.schema, d.table, d.name, d.definition, d.inherited ? "t" : "f"])
    }

    static func removeDetached(_ conn: PGConnection, _ d: Detached) throws {
        try conn.query("DELETE FROM \(q).detached WHERE position = $1", [String(d.position)])
    }

    public static func detached(_ conn: PGConnection) throws -> [Detached] {
        try conn.query("SELECT position, kind, schema_name, table_name, name, definition, inherited FROM \(q).detached ORDER BY position").rows.map {
            let kind = try $0.string(1)
            guard let known = Detached.Kind(rawValue: kind) else {
                throw PGVaultError(.server, "the restore journal \(schema).detached holds an unknown kind \"\(kind)\"; it was written by another pgvault version. Finish that restore with the version that started it, or drop the schema \(schema) and restore again.")
            }
            return Detached(
                position: try $0.int(0), kind: known, schema: try $0.string(2), table: try $0.string(3),
                name: try $0.string(4), definition: try $0.string(5), inherited: try $0.bool(6))
        }
    }

    static func drop(_ conn: PGConnection) throws {
        try conn.execute("DROP SCHEMA IF EXISTS \(q) CASCADE")
    }
}

/// What the restore reads from (and does to) the target database, apart from loading.
enum RestoreTarget {
    /// User objects in the target (not extension members, not the journal):
    /// kind and name, at most `limit`, and how many there are.
    static func userObjects(_ conn: PGConnection, limit: Int = 8) throws -> (objects: [String], count: Int) {
        // One branch per catalog: user schemas only, extension members left out.
        func branch(_ kind: String, _ name: String, from: String, namespace: String, catalog: String, oid: String, where extra: String) -> String {
            """
            SELECT \(kind), \(name) FROM \(from)
            WHERE \(extra) \(namespace) NOT IN ('pg_catalog', 'information_schema', $1) AND \(namespace) NOT LIKE 'pg\\_%'
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.\(catalog)'::regclass
                              AND d.objid = \(oid) AND d.deptype = 'e')
            """
        }
        let relationKind = "CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END"
        let branches = [
            branch(relationKind, "format('%I.%I', n.nspname, c.relname)",
                   from: "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace", namespace: "n.nspname",
                   catalog: "pg_class", oid: "c.oid", where: "c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition AND"),
            branch("'function'", "format('%I.%I', n.nspname, p.proname)",
                   from: "pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace", namespace: "n.nspname",
                   catalog: "pg_proc", oid: "p.oid", where: ""),
            branch("'type'", "format('%I.%I', n.nspname, t.typname)",
                   from: "pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace", namespace: "n.nspname",
                   catalog: "pg_type", oid: "t.oid", where: "t.typtype IN ('e', 'd', 'r') AND"),
            branch("'schema'", "format('%I', n.nspname)", from: "pg_catalog.pg_namespace n", namespace: "n.nspname",
                   catalog: "pg_namespace", oid: "n.oid", where: "n.nspname <> 'public' AND"),
        ]
        let result = try conn.query("""
            WITH objects(kind, name) AS (\(branches.joined(separator: "\nUNION ALL\n")))
            SELECT kind || ' ' || name, count(*) OVER () FROM objects
            ORDER BY array_position(ARRAY['table', 'view', 'materialized view', 'sequence', 'foreign table', 'function', 'type', 'schema'], kind), name
            LIMIT \(limit)
            """, [RestoreJournal.schema])
        // No rows means no user objects: the count over them is 0.
        return (try result.rows.map { try $0.string(0) }, try result.rows.first?.int(1) ?? 0)
    }

    /// The target's facts the planner needs.
    static func facts(_ conn: PGConnection) throws -> LoadPlan.Target {
        let tables = try Catalog.relations(conn).map(\.table).filter { $0.schema != RestoreJournal.schema }
        // Row by row: at 10,000 partitions these are 100,000 names.
        var defaults: [String: Set<String>] = [:]
        try conn.forEachRow("""
            SELECT n.nspname || '.' || c.relname, a.attname
            FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND (a.atthasdef OR a.attidentity <> '')
            """) { r in
            defaults[try r.string(0), default: []].insert(try r.string(1))
        }
        // The names a new relation in a user schema could collide with.
        var names = Set<String>(), sequences = Set<String>()
        try conn.forEachRow("""
            SELECT n.nspname || '.' || c.relname, c.relkind = 'S'
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
            """) { r in
            let name = try r.string(0)
            names.insert(name)
            if try r.bool(1) { sequences.insert(name) }
        }
        let migrations = try conn.query("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL").scalar == "t"
            ? try Migrator.applied(conn).filter(\.success).map(\.version) : nil
        return LoadPlan.Target(
            tables: tables, columnsWithDefault: defaults, relationNames: names, sequences: sequences, migrations: migrations)
    }

    /// Destinations already holding rows.
    static func nonEmpty(_ conn: PGConnection, _ destinations: [(String, String)]) throws -> [String] {
        var out: [String] = []
        for (schema, name) in destinations {
            if try conn.query("SELECT EXISTS (SELECT 1 FROM \(SQL.qualified(schema, name)))").scalar == "t" {
                out.append("\(schema).\(name)")
            }
        }
        return out
    }

    /// Foreign keys into or out of the partition trees / tables of
    /// `destinations`, and their user triggers: what a --data-only load
    /// takes away and puts back. Read with an empty search_path, so the
    /// definitions name every table with its schema.
    static func detachable(_ conn: PGConnection, destinations: [(String, String)]) throws -> [RestoreJournal.Detached] {
        let names = "{" + destinations.map { "\"" + SQL.qualified($0.0, $0.1).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
        return try conn.transaction { conn in
            try conn.execute("SET LOCAL search_path = ''")
            let roots = """
                WITH dest AS (SELECT pg_catalog.unnest($1::text[])::regclass AS rel),
                roots AS (SELECT DISTINCT COALESCE(pg_catalog.pg_partition_root(rel), rel) AS root FROM dest)
                """
            let fks = try conn.query("""
                \(roots)
                SELECT n.nspname, c.relname, con.conname, pg_catalog.pg_get_constraintdef(con.oid)
                FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE con.contype = 'f' AND con.conparentid = 0
                  AND (COALESCE(pg_catalog.pg_partition_root(con.conrelid), con.conrelid) IN (SELECT root FROM roots)
                       OR COALESCE(pg_catalog.pg_partition_root(con.confrelid), con.confrelid) IN (SELECT root FROM roots))
                ORDER BY 1, 2, 3
                """, [names])
            let triggers = try conn.query("""
                \(roots)
                SELECT n.nspname, c.relname, t.tgname, t.tgenabled::text, t.tgparentid <> 0
                FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'
                  AND COALESCE(pg_catalog.pg_partition_root(t.tgrelid), t.tgrelid) IN (SELECT root FROM roots)
                ORDER BY 5, 1, 2, 3
                """, [names])
            var out: [RestoreJournal.Detached] = []
            for r in fks.rows {
                out.append(.init(
                    position: out.count, kind: .foreignKey, schema: try r.string(0), table: try r.string(1), name: try r.string(2),
                    definition: try r.string(3), inherited: false))
            }
            for r in triggers.rows {
                out.append(.init(
                    position: out.count, kind: .trigger, schema: try r.string(0), table: try r.string(1), name: try r.string(2),
                    definition: try r.string(3), inherited: try r.bool(4)))
            }
            return out
        }
    }
}
