import Foundation
import PGClient

/// `repo upgrade`: imports the complete backups of a folder of format-1
/// archives (directories or tars, as ``Repository/scan()`` lists them) into
/// a format-2 repository. Each backup keeps its name (without `.tar`), its
/// times and its manifest; each member's raw bytes (decompressed and checked
/// against the old manifest) are chunked into the repository's packs, then
/// the backup is committed as a backup run is: packs, catalog, manifest last.
///
/// The old archives are only read, never changed or removed. A backup the
/// repository already holds (same name) is skipped, so a second run adds
/// nothing and a run that was interrupted can simply be run again.
public enum RepositoryUpgrade {
    public struct Imported: Codable, Sendable {
        /// `imported` or `skipped` (the repository holds it already).
        public var status: String
        public var name: String
        /// The old archive, left as it was.
        public var source: String
        public var units: Int
        /// Bytes of the packs this backup added to the repository.
        public var addedBytes: Int64
    }

    public struct Result: Codable, Sendable {
        public var status = "upgraded"
        public var from: String
        public var repository: String
        public var backups: [Imported]
        /// Incomplete or damaged backups of the old folder, not imported.
        public var ignored: [String]
    }

    /// Imports every complete backup of `from`, oldest first.
    public static func run(from: String, into repository: ChunkRepository, progress: ((Imported) -> Void)? = nil) throws -> Result {
        let old = try Repository.existing(from)
        if ChunkRepository.exists(path: from) {
            throw PGVaultError.usage("'\(from)' is a format-2 repository already; --from takes a folder of format-1 backups (what `pgvault backup --repo` wrote before `repo init`)")
        }
        // Shared, as a backup's: a prune waits until the import is done.
        let lock = try RepositoryLock.acquire(store: repository.store, kind: .shared, command: "repo upgrade", patience: 30)
        defer { try? lock.release() }
        let scanned = try old.scan().backups
        var present = Set<String>()
        var unfinished = Set<String>()
        for entry in try repository.entries() {
            if entry.status == "complete" { present.insert(entry.name) } else { unfinished.insert(entry.name) }
        }
        var result = Result(from: from, repository: repository.location, backups: [], ignored: scanned.filter { $0.status != "complete" }.map(\.name))
        for entry in scanned.reversed() where entry.status == "complete" {
            try Cancellation.check()
            let name = entry.name.hasSuffix(".tar") ? String(entry.name.dropLast(4)) : entry.name
            let imported: Imported
            if present.contains(name) {
                imported = Imported(status: "skipped", name: name, source: entry.path, units: entry.units ?? 0, addedBytes: 0)
            } else {
                // A catalog without its manifest: this backup's import was
                // interrupted; its catalog is claimed again below.
                if unfinished.contains(name) { try repository.store.delete(Snapshots.catalogKey(name)) }
                imported = try importBackup(entry, as: name, from: old, into: repository)
                present.insert(name)
            }
            result.backups.append(imported)
            progress?(imported)
        }
        return result
    }

    private static func importBackup(_ entry: Repository.Entry, as name: String, from old: Repository, into repository: ChunkRepository) throws -> Imported {
        let source = try Archive.open(entry.name, in: old.store)
        let manifest = try Archive.manifest(of: source)
        guard manifest.packs == nil else {
            throw PGVaultError.archive("'\(entry.path)' is no format-1 archive (its manifest lists packs); give --from a folder of archives `pgvault backup` wrote")
        }
        let session = try ChunkWriteSession(repository: repository)
        do {
            var upgraded = try MemberRecoding.copy(manifest, from: source, into: ArchiveDestination(chunks: session))
            upgraded.packs = try session.finish()
            let statistics = session.statistics
            try Cancellation.check()
            try Snapshots.write(SnapshotCatalog(manifest: upgraded, name: name, statistics: statistics), manifest: upgraded, in: repository)
            return Imported(status: "imported", name: name, source: entry.path, units: upgraded.units.count, addedBytes: statistics.packBytes)
        } catch {
            session.abort()
            throw error
        }
    }
}
