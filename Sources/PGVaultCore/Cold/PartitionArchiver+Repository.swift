import Foundation
import PGClient

/// archive-partitions into a format-2 repository (docs/cold-storage.md, "In
/// a format-2 repository"): the same three steps, with the archive stored as
/// chunks in the repository's packs (deduplicated against the backups) and
/// published by writing its manifest object.
extension PartitionArchiver {
    static func archiveIntoRepository(_ item: Item, conn: PGConnection, options: ColdArchiveOptions, database: String) async throws -> ColdPartitionResult {
        let repository = try ChunkRepository.open(path: options.repo, credentials: .init(keyFile: options.keyFile))
        let partition = item.partition.table.qualifiedName
        let folder = ColdRepository.folder(parent: item.parent.qualified, partition: item.partition.table.name)
        let final = repository.location + "/" + String(folder.dropLast())
        // Shared, before the index is read (as a backup's): a prune waits
        // until the manifest is written or the run has given up.
        let lock = try await Blocking.run("pgvault-cold-lock") {
            try RepositoryLock.acquire(store: repository.store, kind: .shared, command: "archive-partitions", patience: 30)
        }
        defer { try? lock.release() }
        var published = false
        do {
            // 1. Dump, in one snapshot, as chunks; then the packs, then the catalog.
            let session = try ChunkWriteSession(repository: repository)
            var manifest: Manifest
            do {
                manifest = try await Blocking.run("pgvault-cold-dump", on: conn) { conn in
                    try dump(item, conn: conn, options: options, into: ArchiveDestination(chunks: session), database: database)
                }
                manifest.packs = try session.finish()
            } catch {
                session.abort()
                throw error
            }
            guard let info = ColdArchiveInfo(manifest: manifest) else {
                throw PGVaultError.archive("the cold archive of \(partition) has no partition unit; nothing was detached")
            }
            // An archive already there belongs to a run whose detach never
            // committed (the partition is still attached, with its rows).
            try ColdRepository.remove(folder, in: repository)
            try Snapshots.writeSealed(ColdRepositoryCatalog(manifest: manifest, info: info, statistics: session.statistics), at: ColdRepository.catalogKey(folder), in: repository)
            try options.faultInjection?("after-dump")

            // 2. Structure only: the writer may not hold the identity to read
            // packs back; step 3 compares the rows themselves.
            try ColdRepository.checkStructure(manifest, in: repository, what: partition, consequence: "nothing was detached")

            // 3. Compare with the live rows, remove, detach, publish (the manifest), commit.
            let outcome = try await Blocking.run("pgvault-cold-detach", on: conn) { [manifest] conn in
                let publisher = Publisher(
                    final: final,
                    publish: {
                        // A lock lost meanwhile means a prune may have run: no manifest then.
                        try lock.checkHeld()
                        try Snapshots.writeManifest(manifest, at: ColdRepository.manifestKey(folder), what: partition, in: repository)
                    },
                    unpublish: { try? repository.store.delete(ColdRepository.manifestKey(folder)) })
                return try detach(item, manifest: manifest, conn: conn, options: options, publisher: publisher)
            }
            published = outcome.published
            var result = archivedResult(item, manifest: manifest, options: options)
            result.archive = final
            result.archiveBytes = session.statistics.packBytes
            return result
        } catch {
            // Unpublished (or never published): the catalog goes too. After a
            // COMMIT of unknown outcome the archive stays (detach's message).
            if !published, (try? repository.store.head(ColdRepository.manifestKey(folder))) == nil {
                try? repository.store.delete(ColdRepository.catalogKey(folder))
            }
            throw error
        }
    }

    /// The COPY format a backup uses for `relation` by default (binary
    /// where every column type allows it).
    static func backupFormat(_ relation: Catalog.Relation) -> CopyFormat {
        relation.binaryCopy ? .binary : .text
    }
}
