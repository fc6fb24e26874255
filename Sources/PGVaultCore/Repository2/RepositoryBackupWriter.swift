import AgeFormat
import Foundation
import PGClient

/// A backup into a format-2 repository, around the backup engine: opens the
/// repository with the writer's key, holds a shared lock (prune waits), gives
/// the engine a ``ChunkWriteSession`` and a local spool folder for pg_dump's
/// schema files, and at the end commits the backup: its packs, then its
/// catalog, then its manifest, last.
final class RepositoryBackupWriter: Sendable {
    let repository: ChunkRepository
    let session: ChunkWriteSession
    /// Local folder for pg_dump's files, removed by the engine.
    let spool: String
    /// Shared: other backups may run, prune may not.
    private let lock: RepositoryLock
    /// The newest complete backups of each database that have fingerprinted
    /// units (at most ``reuseDepth``; a --schema-only or --table backup in
    /// between does not hide the full one before it), read under the lock, so
    /// no prune removes their chunks meanwhile: where unchanged units come from.
    private let previous: [String: [SnapshotCatalog]]
    static let reuseDepth = 3

    private init(repository: ChunkRepository, session: ChunkWriteSession, spool: String, lock: RepositoryLock, previous: [String: [SnapshotCatalog]]) {
        self.repository = repository
        self.session = session
        self.spool = spool
        self.lock = lock
        self.previous = previous
    }

    /// The units of `database`'s previous backups that carry a fingerprint,
    /// by it; the newest backup's where several have one.
    func fingerprinted(database: String) -> [String: Manifest.Unit] {
        var out: [String: Manifest.Unit] = [:]
        for catalog in previous[database] ?? [] {
            for unit in catalog.fingerprinted ?? [] {
                if let fingerprint = unit.fingerprint, out[fingerprint] == nil { out[fingerprint] = unit }
            }
        }
        return out
    }

    /// nil when `path` is no format-2 repository (a folder of archives, or
    /// nothing yet: the engine writes archives there, as before).
    static func start(_ options: BackupOptions, repository path: String) throws -> RepositoryBackupWriter? {
        let location = RepositoryLocation(path)
        if case .folder = location, !Files.exists(path) { return nil }
        let store = try location.store()
        guard try ChunkRepository.exists(in: store) else {
            guard case .folder = location else {
                throw PGVaultError.archive("'\(store.location)' is not a pgvault repository (it has no config); check --repo, or create one with `pgvault repo init --repo \(path)`", wholeArchive: true)
            }
            return nil
        }
        let repository = try ChunkRepository.open(store: store, credentials: .init(keyFile: options.keyFile))
        // The lock comes before the index is read: a prune that finished
        // before it cannot have deleted a pack the index still names.
        let lock = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", patience: 30)
        let session: ChunkWriteSession
        var previous: [String: [SnapshotCatalog]] = [:]
        do {
            session = try ChunkWriteSession(repository: repository)
            // Newest first. A catalog that does not open (damaged, or not
            // written with the key) costs the reuse, never the backup: `check`
            // and `list` name it.
            for (catalog, complete) in (try? Snapshots.catalogs(repository)) ?? []
            where complete && catalog.fingerprinted != nil && previous[catalog.database, default: []].count < Self.reuseDepth {
                previous[catalog.database, default: []].append(catalog)
            }
        } catch {
            try? lock.release()
            throw error
        }
        let spool = try Files.spoolFolder()
        try Files.makeDirectory(spool + "/schema")
        return RepositoryBackupWriter(repository: repository, session: session, spool: spool, lock: lock, previous: previous)
    }

    /// Finishes the packs, then writes the catalog and the manifest under a
    /// name no other backup has. Returns the name and the bytes the backup
    /// added to the repository.
    func publish(_ manifest: inout Manifest, database: String, started: Date) throws -> (name: String, added: Int64) {
        try Cancellation.check()
        defer { try? lock.release() }
        manifest.packs = try session.finish()
        // A lock lost meanwhile (removed by `repo unlock`, or stale after a
        // long stall) means a prune may have run: no manifest then.
        try lock.checkHeld()
        let statistics = session.statistics
        var name = Repository.backupName(database: database, at: started)
        let base = name
        for attempt in 1... {
            let catalog = SnapshotCatalog(manifest: manifest, name: name, statistics: statistics)
            do {
                try Snapshots.write(catalog, manifest: manifest, in: repository)
                break
            } catch let error as PGVaultError where error.isExistingObject && attempt < 100 {
                name = base + "-\(attempt)"
            }
        }
        return (name, statistics.packBytes)
    }

    func abort() {
        session.abort()
        try? lock.release()
    }
}
