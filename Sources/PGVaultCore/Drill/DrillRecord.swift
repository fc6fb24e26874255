import Foundation
import PGClient

/// What a restore drill leaves in the repository, beside the backup it
/// tested: `drills/<backup name>/<UTC time>`, sealed with the repository key
/// like a catalog, so `list` shows it on the backup host without the
/// identity. It holds times and the outcome, never table data.
public struct DrillRecord: Codable, Sendable, Equatable {
    public var format = "pgvault-drill"
    public var backup: String
    public var startedAt: String
    public var completedAt: String
    /// `scratch cluster (PostgreSQL 17.2)` or the target server, redacted.
    public var place: String
    /// `passed`, `failed` (a check found something: exit 1) or `error`
    /// (the drill could not finish: exit 2).
    public var outcome: String
    public var phases: DrillPhases
    /// Fetch, schema, load and post-data: the time to a usable database.
    public var recoverySeconds: Double
    public var totalSeconds: Double
    /// The first findings of a failed drill, or the error of one that broke off.
    public var problems: [String]
}

/// Wall time of each phase of a drill, in seconds.
public struct DrillPhases: Codable, Sendable, Equatable {
    /// Starting the scratch cluster, or creating the target database: not
    /// part of a recovery (the real one restores into a server that runs).
    public var setup = 0.0
    /// Opening the backup: its manifest read, decrypted and authenticated,
    /// every member checked to be there. (Chunks are fetched as they load.)
    public var fetch = 0.0
    public var schema = 0.0
    public var load = 0.0
    public var postData = 0.0
    public var verify = 0.0
    /// The chat service's queries, each with its plan.
    public var smoke = 0.0

    public init() {}

    public var recovery: Double { fetch + schema + load + postData }
}

/// The drill records of a repository (docs/repository-format.md, "Drills").
public enum DrillRecords {
    static let prefix = "drills/"

    static func objectKey(backup: String, at date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return prefix + backup + "/" + f.string(from: date)
    }

    /// Writes `record` beside its backup. The backup's reader holds the
    /// repository's shared lock meanwhile, so prune is not deleting it.
    static func write(_ record: DrillRecord, at date: Date, in repository: ChunkRepository) throws {
        try Snapshots.writeSealed(record, at: objectKey(backup: record.backup, at: date), in: repository)
    }

    /// Each backup's newest drill, by backup name.
    public static func latest(in repository: ChunkRepository) throws -> [String: DrillRecord] {
        var newest: [String: String] = [:]
        for object in try repository.store.list(prefix: prefix) {
            let parts = object.key.dropFirst(prefix.count).split(separator: "/")
            guard parts.count == 2 else { continue }
            let backup = String(parts[0])
            // The keys end in a UTC time to the millisecond: they sort by time.
            if newest[backup].map({ $0 < object.key }) ?? true { newest[backup] = object.key }
        }
        var out: [String: DrillRecord] = [:]
        for (backup, key) in newest {
            let plain = try Sealing.open(try repository.store.bytes(of: key, limit: 1 << 20), key: repository.key, objectKey: key, location: repository.location)
            guard let record = try? JSONDecoder().decode(DrillRecord.self, from: Data(plain)), record.backup == backup else {
                throw PGVaultError.archive("\(repository.location)/\(key) is not a pgvault drill record; run `pgvault check --repo \(repository.location)`")
            }
            out[backup] = record
        }
        return out
    }

    /// Deletes the drill records of every backup not in `backups` (prune:
    /// those of the backups it dropped, and any an interrupted prune left).
    static func removeAll(except backups: Set<String>, in repository: ChunkRepository) throws {
        for object in try repository.store.list(prefix: prefix) {
            let backup = object.key.dropFirst(prefix.count).split(separator: "/").first.map(String.init) ?? ""
            if backups.contains(backup) { continue }
            try Cancellation.check()
            try repository.store.delete(object.key)
        }
    }
}
