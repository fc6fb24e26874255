import Foundation
import PGClient
import Support

/// `pgvault verify`: proves what an archive holds (offline) and what a restore
/// produced (against the restored database), and finds orphan rows.
///
/// Errors thrown mean the verification could not run (no such archive, no
/// connection); anything wrong with the archive or the data is a failed
/// ``VerifyFinding`` in the report.
public enum Verifier {
    /// Offline: manifest.json parses and has a known format version; every
    /// member is there and none is extra; each member's size and SHA-256 match;
    /// each zstd stream decodes to its end; the rows decoded from each unit
    /// equal the manifest's count and digest. Members are read over `jobs` threads.
    public static func checkArchive(
        path: String, jobs: Int, progress: (@Sendable (String) -> Void)?
    ) async throws -> VerifyReport {
        try await checkArchive(.path(path), jobs: jobs, progress: progress)
    }

    /// The same for an archive or a repository backup.
    public static func checkArchive(
        _ archive: ArchiveLocation, jobs: Int, progress: (@Sendable (String) -> Void)?
    ) async throws -> VerifyReport {
        try await timed {
            try await ArchiveCheck.findings(archive: archive, jobs: jobs, progress: progress)
        }
    }

    /// After a restore: for each table of the archive (of `units`, when given),
    /// the target's row count and content digest equal the manifest's (see
    /// ``RestorePlan`` for partitions); then ``checkForeignKeys``'s checks on
    /// the target. Runs over `jobs` connections.
    ///
    /// `trustValidatedForeignKeys`: a full restore has just added every
    /// foreign key with ALTER TABLE ... ADD CONSTRAINT, which checked every row
    /// (those it had to add NOT VALID stay unvalidated); for the validated ones
    /// that check is the proof, so the same anti-join is not run twice.
    public static func checkRestored(
        archive: ArchiveLocation, conninfo: String, jobs: Int, units: Set<String>?,
        extraRelations: [DeclaredRelation], trustValidatedForeignKeys: Bool = false,
        progress: (@Sendable (String) -> Void)?
    ) async throws -> VerifyReport {
        try await timed {
            try await restoredFindings(
                archive: archive, conninfo: conninfo, jobs: jobs, units: units,
                extraRelations: extraRelations, trustValidatedForeignKeys: trustValidatedForeignKeys, progress: progress)
        }
    }

    static func restoredFindings(
        archive: ArchiveLocation, conninfo: String, jobs: Int, units: Set<String>?,
        extraRelations: [DeclaredRelation], trustValidatedForeignKeys: Bool = false,
        progress: (@Sendable (String) -> Void)?
    ) async throws -> [VerifyFinding] {
        let manifest: Manifest = try await Blocking.run("pgvault-verify-manifest") {
            try Archive.manifest(of: try archive.open())
        }
        if let units, let unknown = units.subtracting(manifest.units.map(\.id)).sorted().first {
            throw PGVaultError.archive("--unit '\(unknown)': \(archive) has no such unit; give unit ids as its manifest.json lists them")
        }
        let catalog = try await CatalogFacts.read(conninfo, extraRelations, tables: true)
        let plan = RestorePlan.make(tables: manifest.tables, units: manifest.units, target: catalog.target, selected: units)
        let (orphans, validated) = catalog.foreignKeys(trustValidated: trustValidatedForeignKeys)
        progress?("comparing \(plan.checks.count) tables with the archive; \(orphans.count) foreign keys")
        let items = plan.checks.map(Item.digest) + orphans.map(Item.orphans)
        let results = try await run(items, jobs: jobs, conninfo: conninfo, archive: archive, progress: progress)
        return plan.findings + results + validated + catalog.problems
    }

    /// What ``checkRestored`` checks after a full restore that read its
    /// tables back as it went (`--verify full`: each table's ``DigestCheck``
    /// a step of ``RestoreGraph``, their findings in `digests`): the foreign
    /// keys, the validated ones trusted.
    static func finishRestored(digests: [VerifyFinding], conninfo: String, jobs: Int) async throws -> VerifyReport {
        try await timed {
            let catalog = try await CatalogFacts.read(conninfo, [], tables: false)
            let (orphans, validated) = catalog.foreignKeys(trustValidated: true)
            let results = try await run(orphans.map(Item.orphans), jobs: jobs, conninfo: conninfo, archive: nil, progress: nil)
            return digests + results + validated + catalog.problems
        }
    }

    /// What verification reads from a database's catalog before it starts:
    /// its tables (to compare with an archive) and the orphan checks to run.
    struct CatalogFacts: Sendable {
        var target: [Manifest.Table]
        var orphans: [OrphanCheck]
        var problems: [VerifyFinding]

        /// Reads them on a connection of its own, closed when done.
        static func read(_ conninfo: String, _ extra: [DeclaredRelation], tables: Bool) async throws -> CatalogFacts {
            try await Blocking.run("pgvault-verify-catalog") {
                let conn = try connect(conninfo)
                let declared = try ForeignKeys.declared(conn)
                let (relations, problems) = try ForeignKeys.resolve(extra, conn)
                return CatalogFacts(
                    target: tables ? try Catalog.relations(conn).map(\.table) : [],
                    orphans: declared + relations, problems: problems)
            }
        }

        /// The orphan checks to run, and the findings of the foreign keys
        /// trusted instead: with `trustValidated`, those a full restore has
        /// just added with ALTER TABLE ... ADD CONSTRAINT, which checked every row.
        func foreignKeys(trustValidated: Bool) -> (run: [OrphanCheck], trusted: [VerifyFinding]) {
            let trusted = orphans.filter { trustValidated && $0.check == "foreign-key" && $0.validated }
            return (orphans.filter { !trusted.contains($0) }, trusted.map {
                VerifyFinding.ok($0.check, $0.child.qualifiedName, constraint: $0.constraint,
                                 "validated by PostgreSQL when the restore added it (every row checked then): \($0.arrow)")
            })
        }
    }

    /// Every foreign key of the database (declared ones, NOT VALID ones too,
    /// composite ones into partitioned tables) and every relation of
    /// `extraRelations` has no orphan rows. One anti-join per relation, over
    /// `jobs` connections.
    public static func checkForeignKeys(
        conninfo: String, jobs: Int, extraRelations: [DeclaredRelation],
        progress: (@Sendable (String) -> Void)?
    ) async throws -> VerifyReport {
        try await timed {
            let catalog = try await CatalogFacts.read(conninfo, extraRelations, tables: false)
            progress?("checking \(catalog.orphans.count) foreign keys and relations")
            let results = try await run(catalog.orphans.map(Item.orphans), jobs: jobs, conninfo: conninfo, archive: nil, progress: progress)
            return results + catalog.problems
        }
    }

    // MARK: - Shared

    enum Item: Sendable {
        case digest(DigestCheck)
        case orphans(OrphanCheck)

        var label: String {
            switch self {
            case .digest(let d): return d.object
            case .orphans(let o): return "\(o.child.qualifiedName) \(o.constraint)"
            }
        }

        /// Rough cost, to start the longest checks first.
        var weight: Int64 {
            switch self {
            case .digest(let d): return d.expectedRows
            case .orphans: return 0
            }
        }
    }

    /// Runs the items over `jobs` connections, the longest first. A query
    /// error of one item (say, a permission denied) becomes a failed finding
    /// for that item; a lost connection stops everything. Findings come back
    /// in the items' order.
    static func run(
        _ items: [Item], jobs: Int, conninfo: String, archive: ArchiveLocation?,
        progress: (@Sendable (String) -> Void)?
    ) async throws -> [VerifyFinding] {
        let count = CheckedCount(total: items.count, progress: progress)
        let findings = try await WorkerPool.overConnections(
            items, jobs: jobs, conninfo: conninfo, name: "pgvault verify", size: { $0.weight }, setup: configure
        ) { conn, item in
            let findings = try checkOrReport(item, conn, archive: archive)
            count.checked(item.label)
            return findings
        }
        return findings.flatMap { $0 }
    }

    /// ``check(_:_:archive:)``, with a query error of the item (say, a
    /// permission denied) as its failed finding; a lost connection throws.
    static func checkOrReport(_ item: Item, _ conn: PGConnection, archive: ArchiveLocation?) throws -> [VerifyFinding] {
        do {
            return try check(item, conn, archive: archive)
        } catch let error as PGError where error.kind == .query && conn.isHealthy {
            return [failure(item, error)]
        }
    }

    static func check(_ item: Item, _ conn: PGConnection, archive: ArchiveLocation?) throws -> [VerifyFinding] {
        switch item {
        case .digest(let d):
            let finding = try d.run(conn, archive: archive ?? .path(""))
            return finding.isFailure ? [finding] + d.ifDifferent : [finding]
        case .orphans(let o): return [try o.run(conn)]
        }
    }

    /// An item the server refused to check.
    static func failure(_ item: Item, _ error: PGError) -> VerifyFinding {
        switch item {
        case .digest(let d): return .failed("digest", d.object, "could not compare: \(error)")
        case .orphans(let o): return .failed(o.check, o.child.qualifiedName, constraint: o.constraint, "could not check: \(error)")
        }
    }

    static func timed(_ body: () async throws -> [VerifyFinding]) async throws -> VerifyReport {
        let clock = ContinuousClock()
        let start = clock.now
        let findings = try await body()
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return VerifyReport(findings: findings, durationSeconds: seconds)
    }
}
