import Foundation
import PGClient

public struct ColdRestoreOptions: Sendable {
    public var conninfo: String
    public var repo: String
    /// The partitioned table, `messages` or `public.messages`.
    public var table: String
    /// `2024-01` (the month's start), a date or a time; nil = unbounded.
    public var since: String?
    /// `2024-03` means through the end of March (the month is included); a date
    /// or time is an exclusive instant. nil = unbounded.
    public var until: String?
    public var dryRun = false
    public var lockWaitTimeout = "30s"
    /// Test hook: `before-commit` (everything loaded and compared, not committed).
    public var faultInjection: (@Sendable (String) throws -> Void)?
    public var progress: (@Sendable (String) -> Void)?

    public init(conninfo: String, repo: String, table: String, since: String?, until: String?) {
        self.conninfo = conninfo
        self.repo = repo
        self.table = table
        self.since = since
        self.until = until
    }
}

public struct ColdRestoredPartition: Codable, Sendable {
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
    public var table: String
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

/// `pgvault restore-partitions`: brings cold ranges of one table back.
///
/// The archives whose range overlaps [--since, --until) are checked (members,
/// checksums), then refused as a whole if any range overlaps a partition that
/// is attached, if a table of the partition's name exists, or if the DEFAULT
/// partition holds rows in the range. Then in ONE transaction, per archive:
/// `CREATE TABLE <partition> PARTITION OF <parent> FOR VALUES <archived bounds>`,
/// COPY the partition's rows, then the referencing rows; compare row counts and
/// digests of what is now in the database with the manifest; COMMIT. Finally each
/// archive moves to `restored/`.
public enum PartitionRestorer {
    public static func run(_ options: ColdRestoreOptions) async throws -> ColdRestoreSummary {
        let started = Date()
        let window = try window(options)
        let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore-partitions")
        let prepared = try await Blocking.run("pgvault-cold-restore-plan", on: conn) { conn in
            try CopySession.apply(conn)
            let database = try conn.query("SELECT current_database()").scalar ?? "postgres"
            try ColdCatalog.acquireLock(conn, database: database)
            let parent = try ColdCatalog.parent(conn, options.table, relations: try Catalog.relations(conn))
            return (database, parent)
        }
        let (database, parent) = prepared
        let store = ColdStore(repo: options.repo)
        let folder = store.tableFolder(schema: parent.schema, table: parent.name)
        let candidates = try store.entries().filter { $0.status == "cold" && $0.table == parent.qualified }
        var selected: [(ColdStore.Entry, Manifest, ColdArchiveInfo)] = []
        for entry in candidates {
            let manifest = try Archive.manifest(of: try Archive.open(entry.path))
            guard let info = ColdArchiveInfo(manifest: manifest) else { continue }
            if window.overlaps(from: info.bound.rangeFrom ?? [], to: info.bound.rangeTo ?? []) ?? false {
                selected.append((entry, manifest, info))
            }
        }
        selected.sort { (TimePoint.parse(ColdCatalog.boundValue($0.2.bound.rangeFrom?.first ?? "")) ?? 0) < (TimePoint.parse(ColdCatalog.boundValue($1.2.bound.rangeFrom?.first ?? "")) ?? 0) }
        guard !selected.isEmpty else {
            throw ColdStorageError("no cold range of \(parent.qualified) in \(folder) overlaps --since \(options.since ?? "-") --until \(options.until ?? "-"); `pgvault list --repo \(options.repo) --cold` shows what is there")
        }
        for (entry, _, _) in selected {
            options.progress?("verifying \(entry.path)")
            let report = try await Verifier.checkArchive(path: entry.path, jobs: 2, progress: nil)
            guard report.ok else {
                throw ColdStorageError("cold archive \(entry.path) does not verify (\(report.failures.map { "\($0.object): \($0.detail)" }.joined(separator: "; "))); nothing was restored")
            }
        }
        let items = selected.map { Item(path: $0.0.path, manifest: $0.1, info: $0.2) }
        let results = try await Blocking.run("pgvault-cold-restore", on: conn) { conn in
            try check(conn, parent: parent, items: items, options: options)
            if options.dryRun {
                return items.map { ColdRestoredPartition(partition: $0.info.partition.qualifiedName, from: $0.info.from, to: $0.info.to, rows: $0.info.partitionUnit.rows, referencingRows: Dictionary($0.info.referencingUnits.map { ($0.qualifiedTable, $0.rows) }, uniquingKeysWith: +), archive: $0.path) }
            }
            return try load(conn, parent: parent, items: items, options: options)
        }
        var moved = results
        if !options.dryRun {
            let restored = folder + "/" + ColdStore.restoredFolder
            if !Files.exists(restored) { try Files.makeDirectory(restored) }
            let stamp = Self.stamp()
            for i in moved.indices {
                let target = restored + "/" + (moved[i].archive as NSString).lastPathComponent + "." + stamp
                try Files.publish(moved[i].archive, as: target)
                moved[i].archive = target
            }
        }
        return ColdRestoreSummary(
            status: options.dryRun ? "dry-run" : "complete", database: database, table: parent.qualified, partitions: moved,
            rows: moved.reduce(0) { $0 + $1.rows + $1.referencingRows.values.reduce(0, +) }, seconds: Date().timeIntervalSince(started))
    }

    struct Item: Sendable {
        var path: String
        var manifest: Manifest
        var info: ColdArchiveInfo
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
        do {
            return try TimeWindow(since: month(options.since, end: false), until: month(options.until, end: true))
        } catch let error as RestoreError {
            throw ColdStorageError(error.description)
        }
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date())
    }

    /// Everything that makes a restore refuse, collected before anything changes.
    static func check(_ conn: PGConnection, parent: ColdCatalog.Parent, items: [Item], options: ColdRestoreOptions) throws {
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
                    [ColdCatalog.boundValue(from), ColdCatalog.boundValue(to)]).scalar ?? "0"
                if n != "0" {
                    problems.append("the DEFAULT partition \(d.table.qualifiedName) holds \(n) rows in [\(from), \(to)); move them out first")
                }
            }
        }
        if !problems.isEmpty {
            throw ColdStorageError("refusing to restore; nothing was changed:\n" + problems.map { "  " + $0 }.joined(separator: "\n"))
        }
    }

    /// One transaction: create, load, compare, commit.
    static func load(_ conn: PGConnection, parent: ColdCatalog.Parent, items: [Item], options: ColdRestoreOptions) throws -> [ColdRestoredPartition] {
        try conn.execute("BEGIN")
        do {
            try conn.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
            try PartitionArchiver.lockOrExplain(conn, "LOCK TABLE ONLY \(parent.sql) IN ACCESS EXCLUSIVE MODE", parent.qualified, options.lockWaitTimeout)
            let refs = try ColdCatalog.references(conn, parent: parent.oid)
            var out: [ColdRestoredPartition] = []
            for item in items {
                let p = item.info.partition
                let partitionSQL = SQL.qualified(p.schema, p.name)
                options.progress?("restoring \(p.qualifiedName) [\(item.info.from), \(item.info.to))")
                try conn.execute("CREATE TABLE \(partitionSQL) PARTITION OF \(parent.sql) \(item.info.bound.expression)")
                let source = try Archive.open(item.path)
                for unit in [item.info.partitionUnit] + item.info.referencingUnits {
                    let cols = unit.columns.map(SQL.ident).joined(separator: ", ")
                    try conn.copyIn("COPY \(SQL.qualified(unit.schema, unit.table)) (\(cols)) FROM STDIN\(unit.format.options())") { writer in
                        try Archive.streamUnit(unit, from: source) { try writer.write($0) }
                    }
                }
                // What is in the database now equals the archive.
                let own = item.info.partitionUnit
                let live = try ColdCatalog.digest(conn, "COPY (SELECT \(own.columns.map(SQL.ident).joined(separator: ", ")) FROM ONLY \(partitionSQL)) TO STDOUT")
                guard live.rows == own.rows, live.hex == own.rowDigest else {
                    throw ColdStorageError("\(p.qualifiedName) after loading has \(live.rows) rows, digest \(live.hex); the archive has \(own.rows), \(own.rowDigest). Rolled back.")
                }
                var referencing: [String: Int64] = [:]
                for unit in item.info.referencingUnits {
                    let tableRefs = refs.filter { $0.schema == unit.schema && $0.table == unit.table }
                    guard !tableRefs.isEmpty else {
                        throw ColdStorageError("\(unit.qualifiedTable) no longer references \(parent.qualified); its archived rows were loaded but cannot be checked. Rolled back.")
                    }
                    let cond = ColdCatalog.referencingCondition(tableRefs, alias: "r", partition: partitionSQL)
                    let sql = "COPY (SELECT \(unit.columns.map { "r.\(SQL.ident($0))" }.joined(separator: ", ")) FROM \(SQL.qualified(unit.schema, unit.table)) r WHERE \(cond)) TO STDOUT"
                    let got = try ColdCatalog.digest(conn, sql)
                    guard got.rows == unit.rows, got.hex == unit.rowDigest else {
                        throw ColdStorageError("rows of \(unit.qualifiedTable) referencing \(p.qualifiedName) after loading: \(got.rows), digest \(got.hex); the archive has \(unit.rows), \(unit.rowDigest). Rolled back.")
                    }
                    referencing[unit.qualifiedTable, default: 0] += unit.rows
                }
                out.append(ColdRestoredPartition(partition: p.qualifiedName, from: item.info.from, to: item.info.to, rows: own.rows, referencingRows: referencing, archive: item.path))
            }
            try options.faultInjection?("before-commit")
            try conn.execute("COMMIT")
            return out
        } catch {
            if conn.isHealthy { try? conn.execute("ROLLBACK") }
            throw error
        }
    }
}
