import Foundation

/// What `pgvault drill` is asked to do (docs/runbooks/restore-drill.md).
public struct DrillOptions: Sendable {
    public enum Place: Sendable {
        /// A database of its own on the server this conninfo names.
        case target(String)
        /// A throwaway cluster of the backup's major version (``ScratchCluster``).
        case scratch
    }

    public var repository: String
    public var credentials: ChunkRepository.Credentials
    /// A backup's name, or `latest`.
    public var backup = "latest"
    public var place: Place
    /// Where the scratch cluster's server programs are (default: searched as pg_dump is).
    public var pgBin: String?
    /// Who runs the scratch cluster when pgvault runs as root (default `postgres`).
    public var scratchUser: String?
    public var jobs = 2
    /// Leave the restored database (and the scratch cluster, running) for a look.
    public var keep = false
    public var log: (@Sendable (String) -> Void)?

    public init(repository: String, credentials: ChunkRepository.Credentials, place: Place) {
        self.repository = repository
        self.credentials = credentials
        self.place = place
    }
}

/// A drill's report (the JSON of `pgvault drill --json`).
public struct DrillResult: Codable, Sendable {
    /// `passed`, or `failed` when a check found something (exit 1).
    public var status: String
    public var repository: String
    public var backup: String
    /// The database the backup is of.
    public var database: String
    public var place: String
    /// The database the drill restored into.
    public var drillDatabase: String
    public var startedAt: String
    public var completedAt: String
    public var phases: DrillPhases
    public var recoverySeconds: Double
    public var totalSeconds: Double
    public var units: Int
    public var rows: Int64
    public var bytes: Int64
    /// `ok` or `failed`: counts, digests and foreign keys against the manifest.
    public var verify: String
    public var verifyFailures: [String]
    public var smoke: [SmokeResult]
    /// What the free-space check of --target found (nil on a scratch cluster).
    public var spaceCheck: String?
    /// With --keep: how to reach what was kept.
    public var kept: String?
    /// Scratch clusters and databases of killed drills, removed first.
    public var cleanedUp: [String]
    public var notes: [String]
    /// The record's object in the repository; nil if it could not be written (see notes).
    public var record: String?

    public var passed: Bool { status == "passed" }
}
