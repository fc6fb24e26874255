import Foundation

public struct RestoreOptions: Sendable {
    /// In which order units are loaded.
    public enum Order: String, Sendable, CaseIterable {
        /// Largest first: the shortest total time over --jobs connections.
        case size
        /// Plain tables first (largest first), then partitions by upper bound,
        /// most recent first, DEFAULT partitions last: recent data is there first.
        case newestFirst = "newest-first"
    }

    /// The archive: a directory or a tar file, or `-` for a tar on standard
    /// input (copied to a temporary file first: ``ArchiveSpool``).
    public var archive: String
    /// A backup of a format-2 repository, read instead of `archive`.
    public var repositoryBackup: RepositoryBackup?
    /// Where the archive is read: the repository's backup, `archive`, or the
    /// copy of standard input.
    var source: ArchiveLocation { repositoryBackup.map { .backup($0) } ?? .path(spooledArchive ?? archive) }
    var spooledArchive: String?
    /// The archive for messages.
    var archiveName: String { repositoryBackup?.location ?? (archive == "-" ? "the archive on standard input" : archive) }
    public var conninfo: String
    public var jobs: Int = 2
    /// Load into a prepared target (e.g. built by the migrations): no schema is
    /// applied; the target's tables are checked against the archive first.
    public var dataOnly = false
    /// Full restore: drop what the archive's schema creates, then restore.
    /// With --data-only: empty the tables about to be loaded first.
    public var clean = false
    /// Finish an interrupted restore recorded in the target's journal.
    public var resume = false
    /// Shell-style patterns on `schema.table` or `table`; a partitioned table
    /// selects its partitions.
    public var tables: [String] = []
    public var excludeTables: [String] = []
    public var window = TimeWindow()
    /// With a window: also load DEFAULT partitions (their rows are unbounded).
    public var includeDefaultPartitions = false
    public var order: Order = .size
    /// Create partitions the target lacks from the archive's bounds.
    public var createPartitions = true
    /// Verify the restore (false: --no-verify), as `verification` says.
    public var verify = true
    public var verification: Verification = .standard
    /// ANALYZE the loaded tables at the end.
    public var analyze = false
    /// Apply the backup's optimizer statistics (PostgreSQL 18; ``Manifest/Schema/statistics``).
    public var statistics = true
    /// Leave out `ALTER ... OWNER TO` (the target lacks the source's roles).
    public var noOwner = false
    /// Leave out GRANT/REVOKE.
    public var noPrivileges = false
    /// Session setting for loads and index builds.
    public var maintenanceWorkMem = "256MB"
    /// Parallel workers per index build (max_parallel_maintenance_workers).
    /// 0 by default: the --jobs connections already keep the server's cores
    /// busy, and a parallel build's workers then only add coordination (a
    /// btree build with 2 workers took about 25 % more server CPU here,
    /// docs/benchmarks.md). Raise it when --jobs is well below the cores.
    public var maintenanceWorkers = 0
    /// Where to write the statement timeline (JSON Lines, ``RestoreTimeline``); full restores only.
    public var timeline: String?
    /// Called about once a second while units load, and at each phase.
    public var progress: (@Sendable (RestoreProgress) -> Void)?
    /// Messages about what the restore does (phases, created partitions, ...).
    public var log: (@Sendable (String) -> Void)?

    public init(archive: String, conninfo: String) {
        self.archive = archive
        self.conninfo = conninfo
    }

    /// What a --resume must agree on with the run it finishes.
    var fingerprint: String {
        [
            dataOnly ? "data-only" : "full",
            "tables=" + tables.joined(separator: ","),
            "exclude=" + excludeTables.joined(separator: ","),
            "since=" + (window.since.map { String($0) } ?? ""),
            "until=" + (window.until.map { String($0) } ?? ""),
            "default=\(includeDefaultPartitions)",
            "create-partitions=\(createPartitions)",
        ].joined(separator: ";")
    }
}

extension RestoreOptions {
    /// How a restore is proved (docs/architecture.md, "Verification levels").
    public enum Verification: String, Sendable, CaseIterable {
        /// What the load proves as it goes (``RestoreProof``): each COPY's row
        /// count against the manifest, the archive's checksums while streaming,
        /// PostgreSQL's validation of the keys and foreign keys.
        case standard
        /// Also reads every restored table back and compares it with the
        /// archive (row counts, content digests, orphan checks): ``Verifier``.
        case full
    }
}

public struct RestoreProgress: Sendable {
    /// `load`, then e.g. `post-data: indexes`, `foreign keys`, `verify`.
    public var phase: String
    /// Statements done in a phase after the load, and how many it has.
    public var phaseDone = 0
    public var phaseTotal = 0
    public var unitsDone: Int
    public var unitsTotal: Int
    public var rows: Int64
    /// COPY text bytes sent so far, and in all selected units.
    public var bytes: Int64
    public var bytesTotal: Int64
    public var elapsed: Double

    /// Bytes per second since the load began, and the time left at that rate.
    public var rate: Double { elapsed > 0 ? Double(bytes) / elapsed : 0 }
    public var eta: Double? { rate > 0 && bytesTotal >= bytes ? Double(bytesTotal - bytes) / rate : nil }
}

public struct RestoreSummary: Codable, Sendable {
    public var status: String
    public var archive: String
    public var database: String
    /// `full` or `data-only`.
    public var mode: String
    public var resumed: Bool
    /// Units loaded by this run, and units a previous run had finished.
    public var units: Int
    public var unitsSkipped: Int
    public var rows: Int64
    public var bytes: Int64
    public var seconds: Double
    public var loadSeconds: Double
    public var postDataSeconds: Double
    /// The other phases' wall time (restore drills report each phase):
    /// reading the manifest, checking every member is there and (a full
    /// restore) reading the post-data script into its spool; the target's
    /// preparation with the pre-data schema; the verification at the end.
    public var fetchSeconds: Double = 0
    public var schemaSeconds: Double = 0
    public var verifySeconds: Double = 0
    /// Full restore: the wall time of the data and post-data steps, and the
    /// lower bound of any schedule of them computed from their timeline.
    public var scheduledSeconds: Double?
    public var bound: RestoreTimeline.Bound?
    /// `standard` or `full`; nil with --no-verify.
    public var verifyLevel: String?
    public var createdPartitions: [String]
    /// Units loaded through a partitioned parent, the server routing the rows.
    public var routedUnits: Int
    /// Rows that ended up in a DEFAULT partition of a parent some units were
    /// routed through (`schema.partition` → rows).
    public var rowsInDefaultPartitions: [String: Int64]
    public var postDataStatements: Int
    public var sequences: Int
    public var dropped: [String]
    /// `ok`, `failed`, or `skipped` (--no-verify).
    public var verify: String
    /// Nil with --no-verify.
    public var verifyOK: Bool?
    public var verifyFailures: [String]
    public var notes: [String]
}
