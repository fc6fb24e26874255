import Foundation
import PGClient

public struct ColdRestoreOptions: Sendable {
    public var conninfo: String
    public var repo: String
    /// The partitioned tables, `messages` or `public.messages`: every one of
    /// them comes back in one transaction, or none does.
    public var tables: [String]
    /// `2024-01` (the month's start), a date or a time; nil = unbounded.
    public var since: String?
    /// `2024-03` means through the end of March (the month is included); a date
    /// or time is an exclusive instant. nil = unbounded.
    public var until: String?
    public var dryRun = false
    public var lockWaitTimeout = "30s"
    /// A format-2 repository's key file (nil: its default place, or the
    /// repository's `keys/secret.age` opened with the identity).
    public var keyFile: String?
    /// The age identity that reads an encrypted format-2 repository.
    public var identityFile: String?
    /// Test hook: `before-commit` (everything loaded and compared, not committed).
    public var faultInjection: (@Sendable (String) throws -> Void)?
    public var progress: (@Sendable (String) -> Void)?

    public init(conninfo: String, repo: String, tables: [String], since: String?, until: String?) {
        self.conninfo = conninfo
        self.repo = repo
        self.tables = tables
        self.since = since
        self.until = until
    }
}

public struct ColdRestoredPartition: Codable, Sendable {
    /// The partitioned table it belongs to.
    public var table: String
    public var partition: String
    public var from: String
    public var to: String
    public var rows: Int64
    public var referencingRows: [String: Int64]
    /// The archive, moved under `restored/` once the transaction committed.
    public var archive: String
}

public struct ColdRestoreSummary: Codable, Sendable {
    /// `complete` or `dry-run`.
    public var status: String
    public var database: String
    public var tables: [String]
    public var partitions: [ColdRestoredPartition]
    public var rows: Int64
    public var seconds: Double
    /// What went wrong after the work was done (a metrics file not written).
    public var warnings: [String]?

    public var metrics: BackupSummary {
        BackupSummary(
            status: status, archive: "", database: database, tables: partitions.count, units: 0, rows: rows,
            rawBytes: 0, archiveBytes: 0, seconds: seconds, snapshotTime: "", walLSN: "", manifest: nil)
    }
}

/// `pgvault restore-partitions`: brings cold ranges of one or more tables back.
///
/// The archives of every table whose range overlaps [--since, --until) are
/// checked (members, checksums), then refused as a whole if any range overlaps
/// a partition that is attached, if a table of the partition's name exists, or
/// if the DEFAULT partition holds rows in the range, or if a table has no such
/// archive. Then in ONE transaction for all the tables, per archive:
/// `CREATE TABLE <partition> PARTITION OF <parent> FOR VALUES <archived bounds>`,
/// COPY the partition's rows, then the referencing rows; compare row counts and
/// digests of what is now in the database with the manifest; COMMIT. Finally each
/// archive moves to `restored/`.
public enum PartitionRestorer {
    public static func run(_ options: ColdRestoreOptions) async throws -> ColdRestoreSummary {
        let started = Date()
        let window = try window(options)
        guard !options.tables.isEmpty else { throw PGVaultError.usage("give at least one table to restore (--table)") }
        let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore-partitions")
        let prepared = try await Blocking.run("pgvault-cold-restore-plan", on: conn) { conn in
            try CopySession.apply(conn)
            let database = try conn.query("SELECT current_database()").firstRow().string(0)
            try ColdCatalog.acquireLock(conn, database: database)
            let relations = try Catalog.relations(conn)
            var parents: [ColdCatalog.Parent] = []
            for name in options.tables {
                let parent = try ColdCatalog.parent(conn, name, relations: relations)
                if !parents.contains(where: { $0.oid == parent.oid }) { parents.append(parent) }
            }
            return (database, parents)
        }
        let (database, parents) = prepared
        let store = ColdStore(repo: options.repo)
        let repository = try ColdRepositoryReader.open(options)
        defer { try? repository?.lock.release() }
        let entries = try repository?.entries() ?? store.entries()
        var plans: [TablePlan] = []
        var nothing: [String] = []
        for parent in parents {
            let items = try selectItems(entries.filter { $0.table == parent.qualified }, in: store, repository: repository, window: window)
            if items.isEmpty { nothing.append(parent.qualified) } else { plans.append(TablePlan(parent: parent, items: items)) }
        }
        guard nothing.isEmpty else {
            throw PGVaultError.archive("no cold range of \(nothing.joined(separator: ", ")) in \(store.root) overlaps --since \(options.since ?? "-") --until \(options.until ?? "-"); nothing was restored. `pgvault list --repo \(options.repo) --cold` shows what is there")
        }
        for item in plans.flatMap(\.items) {
            options.progress?("verifying \(item.path)")
            if let backup = item.backup {
                try await Blocking.run("pgvault-cold-verify") { try ColdRepositoryReader.verify(backup, path: item.path) }
                continue
            }
            let report = try await Verifier.checkArchive(path: item.path, jobs: 2, progress: nil)
            guard report.ok else {
                throw PGVaultError.archive("cold archive \(item.path) does not verify (\(report.failures.map { "\($0.object): \($0.detail)" }.joined(separator: "; "))); nothing was restored")
            }
        }
        let results = try await Blocking.run("pgvault-cold-restore", on: conn) { [plans] conn in
            let problems = try plans.flatMap { try check(conn, parent: $0.parent, items: $0.items) }
            if !problems.isEmpty {
                throw PGVaultError(.server, "refusing to restore; nothing was changed:\n" + problems.map { "  " + $0 }.joined(separator: "\n"))
            }
            if options.dryRun {
                return plans.flatMap { plan in
                    plan.items.map {
                        ColdRestoredPartition(
                            table: plan.parent.qualified, partition: $0.info.partition.qualifiedName, from: $0.info.from, to: $0.info.to,
                            rows: $0.info.partitionUnit.rows,
                            referencingRows: Dictionary($0.info.referencingUnits.map { ($0.qualifiedTable, $0.rows) }, uniquingKeysWith: +),
                            archive: $0.path)
                    }
                }
            }
            return try load(conn, plans: plans, options: options)
        }
        var moved = results
        if !options.dryRun {
            let stamp = Self.stamp()
            for i in moved.indices {
                if let repository {
                    moved[i].archive = try repository.markRestored(moved[i].archive, items: plans.flatMap(\.items), stamp: stamp)
                    continue
                }
                let archive = moved[i].archive as NSString
                let restored = archive.deletingLastPathComponent + "/" + ColdStore.restoredFolder
                if !Files.exists(restored) { try Files.makeDirectory(restored) }
                let target = restored + "/" + archive.lastPathComponent + "." + stamp
                try Files.publish(moved[i].archive, as: target)
                moved[i].archive = target
            }
        }
        return ColdRestoreSummary(
            status: options.dryRun ? "dry-run" : "complete", database: database, tables: parents.map(\.qualified), partitions: moved,
            rows: moved.reduce(0) { $0 + $1.rows + $1.referencingRows.values.reduce(0, +) }, seconds: Date().timeIntervalSince(started))
    }

    struct Item: Sendable {
        var path: String
        var manifest: Manifest
        var info: ColdArchiveInfo
        /// In a format-2 repository: the archive, opened for reading.
        var backup: RepositoryBackup?
    }

    /// One table to bring back and its archives, oldest range first.
    struct TablePlan {
        var parent: ColdCatalog.Parent
        var items: [Item]
    }

    /// The cold archives (of one table) whose range overlaps the window, oldest first.
    static func selectItems(_ entries: [ColdStore.Entry], in store: ColdStore, repository: ColdRepositoryReader?, window: TimeWindow) throws -> [Item] {
        var selected: [Item] = []
        for entry in entries where entry.status == "cold" {
            let backup = try repository?.open(entry.path)
            let manifest = try backup?.manifest ?? Archive.manifest(of: try store.open(entry.path))
            guard let info = ColdArchiveInfo(manifest: manifest) else { continue }
            if window.overlaps(from: info.bound.rangeFrom ?? [], to: info.bound.rangeTo ?? []) ?? false {
                selected.append(Item(path: entry.path, manifest: manifest, info: info, backup: backup))
            }
        }
        func start(_ item: Item) -> Double { TimePoint.parse(ColdCatalog.boundValue(item.info.bound.rangeFrom?.first ?? "")) ?? 0 }
        return selected.sorted { start($0) < start($1) }
    }

    /// `--since 2024-01 --until 2024-03` → [2024-01-01, 2024-04-01): a month
    /// given alone is a whole month.
    static func window(_ options: ColdRestoreOptions) throws -> TimeWindow {
        func month(_ text: String?, end: Bool) -> String? {
            guard let text else { return nil }
            let parts = text.split(separator: "-")
            guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, var y = Int(parts[0]), var m = Int(parts[1]), (1...12).contains(m) else { return text }
            if end { m += 1; if m == 13 { m = 1; y += 1 } }
            return String(format: "%04d-%02d-01", y, m)
        }
        return try TimeWindow(since: month(options.since, end: false), until: month(options.until, end: true))
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date())
    }

    /// Everything that makes the restore of one table refuse, collected before anything changes.
    static func check(_ conn: PGConnection, parent: ColdCatalog.Parent, items: [Item]) throws -> [String] {
        var problems: [String] = []
        let parentColumns = Set(parent.relation.table.columns.filter { !$0.generated }.map(\.name))
        let attached = parent.partitions.filter { $0.table.bound?.isDefault == false }
        for (i, item) in items.enumerated() {
            let p = item.info.partition
            guard let from = item.info.bound.rangeFrom?.first, let to = item.info.bound.rangeTo?.first else { continue }
            if let existing = try conn.query("SELECT to_regclass($1)::text", [SQL.qualified(p.schema, p.name)]).scalar {
                problems.append("\(p.qualifiedName): a table named \(existing) exists (kept detached by --keep-detached, or re-created); attach or drop it first")
            }
            let missing = item.info.partitionUnit.columns.filter { !parentColumns.contains($0) }
            if !missing.isEmpty {
                problems.append("\(p.qualifiedName): \(parent.qualified) has no column(s) \(missing.joined(separator: ", ")) any more")
            }
            for other in attached {
                guard let of = other.table.bound?.rangeFrom?.first, let ot = other.table.bound?.rangeTo?.first else { continue }
                let overlap = try conn.query(
                    "SELECT $1::\(parent.keyType) < $2::\(parent.keyType) AND $3::\(parent.keyType) < $4::\(parent.keyType)",
                    [ColdCatalog.boundValue(from), ColdCatalog.boundValue(ot), ColdCatalog.boundValue(of), ColdCatalog.boundValue(to)]).scalar
                if overlap == "t" {
                    problems.append("\(p.qualifiedName) [\(from), \(to)) overlaps \(other.table.qualifiedName), attached with [\(of), \(ot))")
                }
            }
            for (j, earlier) in items.enumerated() where j < i {
                guard let ef = earlier.info.bound.rangeFrom?.first, let et = earlier.info.bound.rangeTo?.first else { continue }
                let overlap = try conn.query(
                    "SELECT $1::\(parent.keyType) < $2::\(parent.keyType) AND $3::\(parent.keyType) < $4::\(parent.keyType)",
                    [ColdCatalog.boundValue(from), ColdCatalog.boundValue(et), ColdCatalog.boundValue(ef), ColdCatalog.boundValue(to)]).scalar
                if overlap == "t" {
                    problems.append("cold archives \(item.path) and \(earlier.path) overlap; restore them one at a time")
                }
            }
            if let d = parent.defaultPartition {
                let key = SQL.ident(parent.keyColumn)
                let n = try conn.query(
                    "SELECT count(*) FROM ONLY \(SQL.qualified(d.table.schema, d.table.name)) WHERE \(key) >= $1::\(parent.keyType) AND \(key) < $2::\(parent.keyType)",
                    [ColdCatalog.boundValue(from), ColdCatalog.boundValue(to)]).firstRow().int64(0)
                if n != 0 {
                    problems.append("the DEFAULT partition \(d.table.qualifiedName) holds \(n) rows in [\(from), \(to)); move them out first")
                }
            }
        }
        return problems
    }

    /// One transaction for every table: create, load, compare, commit.
    static func load(_ conn: PGConnection, plans: [TablePlan], options: ColdRestoreOptions) throws -> [ColdRestoredPartition] {
        try conn.execute("BEGIN")
        do {
            try conn.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
            for plan in plans {
                try PartitionArchiver.lockOrExplain(conn, "LOCK TABLE ONLY \(plan.parent.sql) IN ACCESS EXCLUSIVE MODE", plan.parent.qualified, options.lockWaitTimeout)
            }
            var out: [ColdRestoredPartition] = []
            for plan in plans {
                out += try loadTable(conn, parent: plan.parent, items: plan.items, options: options)
            }
            try options.faultInjection?("before-commit")
            try conn.execute("COMMIT")
            return out
        } catch {
            if conn.isHealthy { try? conn.execute("ROLLBACK") }
            throw error
        }
    }

    /// Creates, loads and compares the partitions of one table, inside `load`'s transaction.
    static func loadTable(_ conn: PGConnection, parent: ColdCatalog.Parent, items: [Item], options: ColdRestoreOptions) throws -> [ColdRestoredPartition] {
        let refs = try ColdCatalog.references(conn, parent: parent.oid)
        var out: [ColdRestoredPartition] = []
        for item in items {
            let p = item.info.partition
            let partitionSQL = SQL.qualified(p.schema, p.name)
            options.progress?("restoring \(p.qualifiedName) [\(item.info.from), \(item.info.to))")
            try conn.execute("CREATE TABLE \(partitionSQL) PARTITION OF \(parent.sql) \(item.info.bound.expression)")
            let source = try item.backup.map { try RepositoryArchive($0) } ?? ColdStore(repo: options.repo).open(item.path)
            for unit in [item.info.partitionUnit] + item.info.referencingUnits {
                let cols = unit.columns.map(SQL.ident).joined(separator: ", ")
                try conn.copyIn("COPY \(SQL.qualified(unit.schema, unit.table)) (\(cols)) FROM STDIN\(unit.format.options())") { writer in
                    try Archive.streamUnit(unit, from: source) { try writer.write($0) }
                }
            }
            // What is in the database now equals the archive.
            let own = item.info.partitionUnit
            let live = try ColdCatalog.digest(conn, "COPY (SELECT \(own.columns.map(SQL.ident).joined(separator: ", ")) FROM ONLY \(partitionSQL)) TO STDOUT", format: own.format)
            guard live.rows == own.rows, live.hex == own.rowDigest else {
                throw PGVaultError(.server, "\(p.qualifiedName) after loading has \(live.rows) rows, digest \(live.hex); the archive has \(own.rows), \(own.rowDigest). Rolled back.")
            }
            var referencing: [String: Int64] = [:]
            for unit in item.info.referencingUnits {
                let tableRefs = refs.filter { $0.schema == unit.schema && $0.table == unit.table }
                guard !tableRefs.isEmpty else {
                    throw PGVaultError(.server, "\(unit.qualifiedTable) no longer references \(parent.qualified); its archived rows were loaded but cannot be checked. Rolled back.")
                }
                let cond = ColdCatalog.referencingCondition(tableRefs, alias: "r", partition: partitionSQL)
                let sql = "COPY (SELECT \(unit.columns.map { "r.\(SQL.ident($0))" }.joined(separator: ", ")) FROM \(SQL.qualified(unit.schema, unit.table)) r WHERE \(cond)) TO STDOUT"
                let got = try ColdCatalog.digest(conn, sql, format: unit.format)
                guard got.rows == unit.rows, got.hex == unit.rowDigest else {
                    throw PGVaultError(.server, "rows of \(unit.qualifiedTable) referencing \(p.qualifiedName) after loading: \(got.rows), digest \(got.hex); the archive has \(unit.rows), \(unit.rowDigest). Rolled back.")
                }
                referencing[unit.qualifiedTable, default: 0] += unit.rows
            }
            out.append(ColdRestoredPartition(table: parent.qualified, partition: p.qualifiedName, from: item.info.from, to: item.info.to, rows: own.rows, referencingRows: referencing, archive: item.path))
        }
        return out
    }
}
