import Foundation
import PGClient
import ZstdStream

public struct ColdArchiveOptions: Sendable {
    /// Which partitions are old enough.
    public enum Cutoff: Sendable, Equatable {
        /// `12months`, `90days`, `1year`: cutoff = start of the current month (UTC) minus this.
        case olderThan(String)
        /// A date or time: partitions whose upper bound is at or before it.
        case before(String)
    }

    /// What to do with rows of other tables that reference an archived partition.
    public enum ReferencingRows: String, Sendable, CaseIterable {
        /// Refuse, listing them (the default): nothing is archived.
        case refuse
        /// Archive them into the partition's cold archive and delete them in the
        /// transaction that detaches the partition.
        case archive
    }

    public var conninfo: String
    public var repo: String
    /// Partitioned tables (`messages`, `public.audit_logs`), in order.
    public var tables: [String]
    public var cutoff: Cutoff
    public var referencingRows: ReferencingRows = .refuse
    /// Keep the detached partition as a plain table instead of dropping it.
    public var keepDetached = false
    /// Move each partition to this partitioned table (DETACH, then ATTACH with
    /// the same bounds, in one transaction) instead of to a cold archive.
    public var attachTo: String?
    public var dryRun = false
    /// How long to wait for each lock, e.g. "30s".
    public var lockWaitTimeout = "30s"
    public var compressionLevel: Int32 = 2
    /// A format-2 repository's key file (nil: its default place).
    public var keyFile: String?
    /// At most this many partitions per run (oldest first); nil = all selected.
    public var limit: Int?
    /// Test hook, called at named points: `after-dump` (archive written, not yet
    /// verified), `before-detach` (archive verified, partition locked and compared,
    /// referencing rows deleted, not yet detached), `before-commit` (detached and
    /// dropped, archive published, not yet committed). A throw there must leave
    /// the database as it was.
    public var faultInjection: (@Sendable (String) throws -> Void)?
    public var progress: (@Sendable (String) -> Void)?

    public init(conninfo: String, repo: String, tables: [String], cutoff: Cutoff) {
        self.conninfo = conninfo
        self.repo = repo
        self.tables = tables
        self.cutoff = cutoff
    }
}

public struct ColdPartitionResult: Codable, Sendable {
    public var table: String
    public var partition: String
    public var from: String
    public var to: String
    /// `archived` (detached and dropped), `archived-kept-detached`, `attached`
    /// (moved by --attach-to), or in a dry run `would-archive`, `would-attach`
    /// or `refused`.
    public var action: String
    /// The table an `attached` partition now belongs to.
    public var attachedTo: String?
    public var rows: Int64?
    /// Rows of referencing tables (archived and deleted, or that would be), by table.
    public var referencingRows: [String: Int64]
    public var archive: String?
    public var archiveBytes: Int64
    /// Why a dry run says the partition would be refused.
    public var reason: String?
}

public struct ColdArchiveSummary: Codable, Sendable {
    /// `complete`, `nothing-to-do` or `dry-run`.
    public var status: String
    public var database: String
    public var cutoff: String
    public var dryRun: Bool
    public var partitions: [ColdPartitionResult]
    public var rows: Int64
    public var archiveBytes: Int64
    public var seconds: Double
    /// What went wrong after the work was done (a metrics file not written).
    public var warnings: [String]?

    /// The figures MetricsFile writes for a successful run.
    public var metrics: BackupSummary {
        BackupSummary(
            status: status, archive: "", database: database, tables: partitions.count, units: 0, rows: rows,
            rawBytes: 0, archiveBytes: archiveBytes, seconds: seconds, snapshotTime: "", walLSN: "", manifest: nil)
    }
}

/// `pgvault archive-partitions`: for each old partition, oldest first,
///
/// 1. dump it, and the rows of other tables that reference it, into a cold
///    archive (one REPEATABLE READ snapshot, the normal archive format);
/// 2. verify the archive's members (size, SHA-256, zstd);
/// 3. in ONE transaction: lock the parent and the partition ACCESS EXCLUSIVE,
///    recompute the partition's row count and digest and compare them with the
///    archive, delete the referencing rows (capturing exactly what was deleted
///    and comparing it with the archive too), DETACH the partition, DROP it
///    (unless --keep-detached), publish the archive under its final name, COMMIT.
///
/// Any failure before the COMMIT rolls the transaction back: the partition
/// stays attached with all its rows, the referencing rows stay, and the
/// archive is removed. See docs/cold-storage.md.
public enum PartitionArchiver {
    public static func run(_ options: ColdArchiveOptions) async throws -> ColdArchiveSummary {
        let started = Date()
        guard !options.tables.isEmpty else { throw PGVaultError.usage("give at least one --table") }
        let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault archive-partitions")
        if options.attachTo != nil, options.referencingRows == .archive || options.keepDetached {
            throw PGVaultError.usage("--attach-to moves partitions inside the database: it takes neither --referencing-rows archive nor --keep-detached")
        }
        let (plan, target) = try await Blocking.run("pgvault-cold-plan", on: conn) { conn in
            try CopySession.apply(conn)
            let database = try conn.query("SELECT current_database()").firstRow().string(0)
            try ColdCatalog.acquireLock(conn, database: database)
            var plan = try makePlan(conn, options: options, database: database)
            let target = try options.attachTo.map { try PartitionMover.check(conn, target: $0, plan: &plan) }
            return (plan, target)
        }
        if options.dryRun || plan.items.isEmpty {
            return ColdArchiveSummary(
                status: options.dryRun ? "dry-run" : "nothing-to-do", database: plan.database, cutoff: plan.cutoff,
                dryRun: options.dryRun, partitions: plan.items.map(\.result), rows: 0, archiveBytes: 0,
                seconds: Date().timeIntervalSince(started))
        }
        let refused = plan.items.filter { $0.result.action == "refused" }
        if !refused.isEmpty {
            throw PGVaultError(.server, "refusing to archive; nothing was changed:\n" + refused.map { "  \($0.result.partition): \($0.result.reason ?? "")" }.joined(separator: "\n"))
        }
        var results: [ColdPartitionResult] = []
        for item in plan.items {
            try Task.checkCancellation()
            if let target {
                options.progress?("moving \(item.result.partition) [\(item.result.from), \(item.result.to)) to \(target.qualified)")
                results.append(try await Blocking.run("pgvault-cold-move", on: conn) { conn in
                    try PartitionMover.move(item, to: target, conn: conn, options: options)
                })
                continue
            }
            options.progress?("archiving \(item.result.partition) [\(item.result.from), \(item.result.to))")
            results.append(try await archive(item, conn: conn, options: options, database: plan.database))
        }
        return ColdArchiveSummary(
            status: "complete", database: plan.database, cutoff: plan.cutoff, dryRun: false, partitions: results,
            rows: results.reduce(0) { $0 + ($1.rows ?? 0) + $1.referencingRows.values.reduce(0, +) },
            archiveBytes: results.reduce(0) { $0 + $1.archiveBytes }, seconds: Date().timeIntervalSince(started))
    }

    // MARK: - Planning

    struct Item: Sendable {
        var parent: ColdCatalog.Parent
        var partition: Catalog.Relation
        var references: [ColdCatalog.Reference]
        /// Referencing tables' relations (columns), by `schema.table`.
        var referencing: [String: Catalog.Relation]
        var result: ColdPartitionResult
    }

    struct Plan: Sendable {
        var database: String
        var cutoff: String
        var items: [Item]
    }

    static func makePlan(_ conn: PGConnection, options: ColdArchiveOptions, database: String) throws -> Plan {
        let cutoff: String
        switch options.cutoff {
        case .olderThan(let text):
            let interval = try ColdCatalog.interval(text)
            cutoff = try conn.query("SELECT (date_trunc('month', now()) - $1::interval)::timestamptz::text", [interval]).firstRow().string(0)
        case .before(let text):
            do {
                cutoff = try conn.query("SELECT $1::timestamptz::text", [text]).firstRow().string(0)
            } catch let error as PGError {
                throw PGVaultError(.usage, "--before '\(text)': not a date or time", underlying: error)
            }
        }
        let relations = try Catalog.relations(conn)
        var items: [Item] = []
        for name in options.tables {
            let parent = try ColdCatalog.parent(conn, name, relations: relations)
            let refs = try ColdCatalog.references(conn, parent: parent.oid)
            let selfRefs = refs.filter { r in r.oid == parent.oid || parent.partitions.contains { $0.oid == r.oid } }
            if !selfRefs.isEmpty {
                throw PGVaultError(.server, "\(parent.qualified) references itself (\(selfRefs.map(\.name).joined(separator: ", "))); cold storage does not handle self-referencing partitioned tables")
            }
            var candidates: [(Catalog.Relation, Double)] = []
            for p in parent.partitions {
                guard let bound = p.table.bound, !bound.isDefault, let to = bound.rangeTo?.first, let from = bound.rangeFrom?.first else { continue }
                if to == "MAXVALUE" { continue }
                let old: String?
                do {
                    old = try conn.query("SELECT $1::timestamptz <= $2::timestamptz", [ColdCatalog.boundValue(to), cutoff]).scalar
                } catch let error as PGError {
                    throw PGVaultError.server("partition \(p.table.qualifiedName)'s upper bound '\(to)' is not a time; cold storage selects partitions by a time key", error)
                }
                if old == "t" { candidates.append((p, TimePoint.parse(ColdCatalog.boundValue(from)) ?? -.infinity)) }
            }
            candidates.sort { $0.1 < $1.1 }
            var referencing: [String: Catalog.Relation] = [:]
            for g in ColdCatalog.grouped(refs) {
                referencing["\(g.schema).\(g.table)"] = relations.first { $0.oid == g.oid }
            }
            let grandchildren = try ColdCatalog.referencedBy(conn, tables: ColdCatalog.grouped(refs).map(\.oid))
            for (p, _) in candidates {
                var reason: String?
                if p.table.kind == "partitioned" {
                    reason = "it is itself partitioned; cold storage moves leaf partitions only"
                }
                var counts: [String: Int64] = [:]
                let needCounts = options.dryRun || options.referencingRows == .refuse
                if needCounts {
                    for g in ColdCatalog.grouped(refs) {
                        let cond = ColdCatalog.referencingCondition(g.refs, alias: "r", partition: SQL.qualified(p.table.schema, p.table.name))
                        let n = try conn.query("SELECT count(*) FROM \(SQL.qualified(g.schema, g.table)) r WHERE \(cond)").firstRow().int64(0)
                        if n > 0 { counts["\(g.schema).\(g.table)"] = n }
                    }
                }
                if reason == nil, !counts.isEmpty, options.referencingRows == .refuse {
                    let list = counts.sorted { $0.key < $1.key }.map { "\($0.value) rows of \($0.key)" }.joined(separator: ", ")
                    let keys = refs.map { "\($0.qualified).\($0.name)" }.joined(separator: ", ")
                    reason = "\(list) reference it (foreign keys \(keys)); pgvault never leaves dangling references nor cascades. \(options.attachTo.map { "A partition of \($0) cannot satisfy those foreign keys: remove them first, or archive the partition to cold storage with them (--referencing-rows archive, without --attach-to)" } ?? "Archive them with it (--referencing-rows archive) or remove them first")"
                }
                if reason == nil, !grandchildren.isEmpty, !refs.isEmpty, options.referencingRows == .archive || !counts.isEmpty {
                    reason = "the referencing tables are themselves referenced (\(grandchildren.joined(separator: "; "))); removing their rows could orphan or cascade further, which pgvault does not do"
                }
                var rows: Int64?
                if options.dryRun {
                    rows = try conn.query("SELECT count(*) FROM ONLY \(SQL.qualified(p.table.schema, p.table.name))").firstRow().int64(0)
                }
                let store = ColdStore(repo: options.repo)
                let result = ColdPartitionResult(
                    table: parent.qualified, partition: p.table.qualifiedName,
                    from: p.table.bound?.rangeFrom?.joined(separator: ", ") ?? "", to: p.table.bound?.rangeTo?.joined(separator: ", ") ?? "",
                    action: reason != nil ? "refused" : (options.dryRun ? (options.attachTo != nil ? "would-attach" : options.keepDetached ? "would-archive-keep-detached" : "would-archive") : "pending"),
                    rows: rows, referencingRows: counts,
                    archive: ChunkRepository.exists(path: options.repo)
                        ? options.repo + "/" + String(ColdRepository.folder(parent: parent.qualified, partition: p.table.name).dropLast())
                        : store.archivePath(schema: parent.schema, table: parent.name, partition: p.table.name),
                    archiveBytes: 0, reason: reason)
                items.append(Item(parent: parent, partition: p, references: refs, referencing: referencing, result: result))
            }
        }
        if let limit = options.limit, items.count > limit { items = Array(items.prefix(limit)) }
        return Plan(database: database, cutoff: cutoff, items: items)
    }

    // MARK: - One partition

    static func archive(_ item: Item, conn: PGConnection, options: ColdArchiveOptions, database: String) async throws -> ColdPartitionResult {
        if ChunkRepository.exists(path: options.repo) {
            return try await archiveIntoRepository(item, conn: conn, options: options, database: database)
        }
        let store = ColdStore(repo: options.repo)
        let folder = try store.ensureTableFolder(schema: item.parent.schema, table: item.parent.name)
        let final = store.archivePath(schema: item.parent.schema, table: item.parent.name, partition: item.partition.table.name)
        let staging = folder + "/." + ColdStore.safe(item.partition.table.name) + ".partial-\(getpid())"
        Files.removeTree(staging)
        try Files.makeDirectory(staging)
        try Files.makeDirectory(staging + "/data")
        var keepStaging = false
        PartialOutputs.register(staging)
        defer {
            if !keepStaging { Files.removeTree(staging) }
            PartialOutputs.forget(staging)
        }

        // 1. Dump, in one snapshot.
        let manifest = try await Blocking.run("pgvault-cold-dump", on: conn) { conn in
            let destination = ArchiveDestination(stagingFolder: staging)
            let manifest = try dump(item, conn: conn, options: options, into: destination, database: database)
            // Last: every member was committed through the store (whole,
            // fsynced, its folder fsynced); the put fsyncs the staging folder.
            try destination.put(manifest)
            return manifest
        }
        try options.faultInjection?("after-dump")
        TestPause.here("archive-partitions: \(item.partition.table.qualifiedName) is dumped", variable: "PGVAULT_TEST_COLD_PAUSE_AFTER_DUMP")

        // 2. Checksums of what was written.
        let report = try await Verifier.checkArchive(path: staging, jobs: 2, progress: nil)
        guard report.ok else {
            throw PGVaultError.archive("the cold archive of \(item.partition.table.qualifiedName) does not verify (\(report.failures.map { "\($0.object): \($0.detail)" }.joined(separator: "; "))); nothing was detached")
        }

        // 3. Compare with the live rows, remove, detach, publish, commit.
        let outcome = try await Blocking.run("pgvault-cold-detach", on: conn) { conn in
            try detach(item, manifest: manifest, conn: conn, options: options, publisher: folderPublisher(staging: staging, final: final))
        }
        keepStaging = outcome.published
        var result = archivedResult(item, manifest: manifest, options: options)
        result.archive = final
        result.archiveBytes = try LocalFolderStore(root: final).size(of: "")
        return result
    }

    /// The plan's result, filled in from the archive's manifest.
    static func archivedResult(_ item: Item, manifest: Manifest, options: ColdArchiveOptions) -> ColdPartitionResult {
        var result = item.result
        result.action = options.keepDetached ? "archived-kept-detached" : "archived"
        result.rows = manifest.units.first { $0.schema == item.partition.table.schema && $0.table == item.partition.table.name }?.rows ?? 0
        result.referencingRows = Dictionary(
            manifest.units.filter { !($0.schema == item.partition.table.schema && $0.table == item.partition.table.name) }.map { ($0.qualifiedTable, $0.rows) },
            uniquingKeysWith: +)
        return result
    }

    /// Writes the partition's unit and one unit per referencing table into
    /// `destination`, and returns their manifest (the caller publishes it).
    static func dump(_ item: Item, conn: PGConnection, options: ColdArchiveOptions, into destination: ArchiveDestination, database: String) throws -> Manifest {
        let started = Date()
        let p = item.partition.table
        let partitionSQL = SQL.qualified(p.schema, p.name)
        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        do {
            try conn.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
            try lockOrExplain(conn, "LOCK TABLE ONLY \(partitionSQL) IN ACCESS SHARE MODE", p.qualifiedName, options.lockWaitTimeout)
            try checkStillAttached(conn, item)
            let facts = try BackupEngine.snapshotFacts(conn)
            var units: [Manifest.Unit] = []
            var tables: [Manifest.Table] = []
            let columns = p.columns.filter { !$0.generated }.map(\.name)
            let cols = columns.map(SQL.ident).joined(separator: ", ")
            // Into a format-2 repository the partition goes as a backup
            // dumps it (the same statement and COPY format), so its chunks
            // are the ones the nightly backups already stored.
            let unit = destination.chunks != nil
                ? try UnitWriter.write(
                    id: "u00001", schema: p.schema, table: p.name, columns: columns,
                    sql: "COPY \(partitionSQL) (\(cols)) TO STDOUT\(backupFormat(item.partition).options())", format: backupFormat(item.partition),
                    conn: conn, into: destination, level: options.compressionLevel)
                : try UnitWriter.write(
                    id: "u00001", schema: p.schema, table: p.name, columns: columns,
                    sql: "COPY (SELECT \(cols) FROM ONLY \(partitionSQL)) TO STDOUT", conn: conn, into: destination, level: options.compressionLevel)
            units.append(unit)
            var pt = p
            pt.rows = unit.rows
            tables.append(pt)
            for (i, g) in ColdCatalog.grouped(item.references).enumerated() {
                guard var rt = item.referencing["\(g.schema).\(g.table)"]?.table else {
                    throw PGVaultError(.server, "table \(g.schema).\(g.table) (referencing \(item.parent.qualified)) vanished from the catalog")
                }
                let rcols = rt.columns.filter { !$0.generated }.map(\.name)
                let cond = ColdCatalog.referencingCondition(g.refs, alias: "r", partition: partitionSQL)
                let sql = "COPY (SELECT \(rcols.map { "r.\(SQL.ident($0))" }.joined(separator: ", ")) FROM \(SQL.qualified(g.schema, g.table)) r WHERE \(cond)) TO STDOUT"
                let u = try UnitWriter.write(id: String(format: "u%05d", i + 2), schema: g.schema, table: g.table, columns: rcols,
                                      sql: sql, conn: conn, into: destination, level: options.compressionLevel)
                if u.rows > 0 && options.referencingRows == .refuse {
                    throw PGVaultError(.server, "\(u.rows) rows of \(g.schema).\(g.table) reference \(p.qualifiedName); refusing (use --referencing-rows archive to archive them with it)")
                }
                units.append(u)
                rt.rows = u.rows
                tables.append(rt)
            }
            try conn.execute("COMMIT")
            let dbRow = try conn.query("SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()").rows.first
            let manifest = Manifest(
                startedAt: ISO8601.format(started), completedAt: ISO8601.format(Date()),
                server: facts.server,
                database: Manifest.Database(name: database, encoding: dbRow?[0] ?? facts.encoding, collate: dbRow?[1] ?? nil, ctype: dbRow?[2] ?? nil),
                snapshot: Manifest.Snapshot(id: facts.snapshotID, time: facts.time, walLSN: facts.walLSN, walSegment: facts.walSegment, standby: facts.standby),
                migrations: nil,
                copySettings: CopySession.asDictionary,
                compression: Manifest.Compression(level: Int(options.compressionLevel)),
                selection: Manifest.Selection(tables: [p.qualifiedName], excludeTables: [], schemaOnly: false, dataOnly: true),
                schema: nil, sequences: [], tables: tables, units: units)
            return manifest
        } catch {
            if conn.isHealthy { try? conn.execute("ROLLBACK") }
            throw error
        }
    }

    struct DetachOutcome: Sendable { var published: Bool }

    /// How step 3 makes the archive exist (inside the transaction, before
    /// COMMIT), takes it back when the transaction fails after that, and
    /// tidies up after the COMMIT; `final` names it in messages.
    struct Publisher {
        var final: String
        var publish: () throws -> Void
        var unpublish: () -> Void
        var committed: () -> Void = {}
    }

    /// A folder repository: the staging folder is renamed to its final name;
    /// an older archive there belongs to a run whose detach never committed
    /// (the partition was still attached): it is set aside, and put back if
    /// this run fails.
    static func folderPublisher(staging: String, final: String) -> Publisher {
        var replaced: String?
        var published = false
        return Publisher(
            final: final,
            publish: {
                if Files.exists(final) {
                    let aside = staging + ".replaced"
                    Files.removeTree(aside)
                    try Files.publish(final, as: aside)
                    replaced = aside
                }
                try PartialOutputs.publishing(staging) { try Files.publish(staging, as: final) }
                published = true
            },
            unpublish: {
                if published { try? Files.publish(final, as: staging) }
                if let replaced { try? Files.publish(replaced, as: final) }
            },
            committed: { if let replaced { Files.removeTree(replaced) } })
    }

    /// Step 3, in one transaction on the leader.
    static func detach(
        _ item: Item, manifest: Manifest, conn: PGConnection, options: ColdArchiveOptions, publisher: Publisher
    ) throws -> DetachOutcome {
        let p = item.partition.table
        let partitionSQL = SQL.qualified(p.schema, p.name)
        let final = publisher.final
        var published = false
        try conn.execute("BEGIN")
        do {
            try conn.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
            // Parent first, as any query through the parent does: no lock-order deadlock.
            try lockOrExplain(conn, "LOCK TABLE ONLY \(item.parent.sql) IN ACCESS EXCLUSIVE MODE", item.parent.qualified, options.lockWaitTimeout)
            try lockOrExplain(conn, "LOCK TABLE ONLY \(partitionSQL) IN ACCESS EXCLUSIVE MODE", p.qualifiedName, options.lockWaitTimeout)
            try checkStillAttached(conn, item)

            guard let own = manifest.units.first(where: { $0.schema == p.schema && $0.table == p.name }) else {
                throw PGVaultError.archive("the manifest has no unit for \(p.qualifiedName)")
            }
            let live = try ColdCatalog.digest(conn, "COPY (SELECT \(own.columns.map(SQL.ident).joined(separator: ", ")) FROM ONLY \(partitionSQL)) TO STDOUT", format: own.format)
            guard live.rows == own.rows, live.hex == own.rowDigest else {
                throw PGVaultError(.server, "\(p.qualifiedName) changed after it was dumped (archive: \(own.rows) rows, digest \(own.rowDigest); now: \(live.rows) rows, digest \(live.hex)); nothing was detached. Run again.")
            }
            for (i, g) in ColdCatalog.grouped(item.references).enumerated() {
                guard let unit = manifest.units.first(where: { $0.schema == g.schema && $0.table == g.table }) else { continue }
                // Delete exactly the referencing rows, keep what was deleted, and
                // compare it with the archive: a row changed since the dump fails here.
                let temp = "pgvault_cold_deleted_\(i + 1)"
                let cols = unit.columns.map(SQL.ident).joined(separator: ", ")
                let refCols = unit.columns.map { "r.\(SQL.ident($0))" }.joined(separator: ", ")
                let cond = ColdCatalog.referencingCondition(g.refs, alias: "r", partition: partitionSQL)
                try conn.execute("CREATE TEMPORARY TABLE \(SQL.ident(temp)) ON COMMIT DROP AS SELECT \(cols) FROM \(SQL.qualified(g.schema, g.table)) WITH NO DATA")
                try conn.execute("WITH d AS (DELETE FROM \(SQL.qualified(g.schema, g.table)) r WHERE \(cond) RETURNING \(refCols)) INSERT INTO \(SQL.ident(temp)) SELECT * FROM d")
                let deleted = try ColdCatalog.digest(conn, "COPY \(SQL.ident(temp)) (\(cols)) TO STDOUT", format: unit.format)
                guard deleted.rows == unit.rows, deleted.hex == unit.rowDigest else {
                    throw PGVaultError(.server, "rows of \(g.schema).\(g.table) referencing \(p.qualifiedName) changed after the dump (archive: \(unit.rows) rows; now: \(deleted.rows)); nothing was detached. Run again.")
                }
            }
            try options.faultInjection?("before-detach")
            try conn.execute("ALTER TABLE \(item.parent.sql) DETACH PARTITION \(partitionSQL)")
            if !options.keepDetached {
                try conn.execute("DROP TABLE \(partitionSQL)")
            }
            // Publish before COMMIT: once the rows are gone, the archive exists.
            // A signal (or a failed check) up to here rolls the detach back.
            published = true
            try publisher.publish()
            try options.faultInjection?("before-commit")
        } catch {
            if conn.isHealthy { try? conn.execute("ROLLBACK") }
            if published { publisher.unpublish() }
            throw error
        }
        // The outcome of a failed COMMIT is unknown: keep the archive, it may
        // be the only copy of the rows.
        try commit(conn, what: "the detach of \(p.qualifiedName)", unknown: "The cold archive is kept at \(final). If \(p.qualifiedName) is still attached, a new run replaces the archive; if it is gone, the archive holds its rows.")
        publisher.committed()
        return DetachOutcome(published: published)
    }

    /// COMMIT; a failure says the outcome is unknown (the connection may have
    /// died after the server committed) and what to look at (`unknown`).
    static func commit(_ conn: PGConnection, what: String, unknown: String) throws {
        do {
            try conn.execute("COMMIT")
        } catch {
            let failure = PGVaultError.classify(error)
            throw PGVaultError(failure.kind, "COMMIT of \(what) failed (\(error)); its outcome is unknown. \(unknown)", underlying: failure)
        }
    }

    static func checkStillAttached(_ conn: PGConnection, _ item: Item) throws {
        let p = item.partition.table
        let row = try conn.query("""
            SELECT i.inhparent::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
            JOIN pg_inherits i ON i.inhrelid = c.oid WHERE c.oid = $1::oid AND c.relispartition
            """, [String(item.partition.oid)]).rows.first
        guard let row, row[0] == String(item.parent.oid), row[1] == p.bound?.expression else {
            throw PGVaultError(.server, "\(p.qualifiedName) is no longer a partition of \(item.parent.qualified) with bounds \(p.bound?.expression ?? "?") (detached, dropped or re-created meanwhile); run again")
        }
    }

    static func lockOrExplain(_ conn: PGConnection, _ sql: String, _ table: String, _ timeout: String) throws {
        do {
            try conn.execute(sql)
        } catch let error as PGError where error.sqlState == PGError.lockNotAvailable {
            throw PGVaultError.server("could not lock \(table) within --lock-wait-timeout \(timeout): other sessions are using it. Nothing was detached; retry later or raise --lock-wait-timeout", error)
        }
    }
}
