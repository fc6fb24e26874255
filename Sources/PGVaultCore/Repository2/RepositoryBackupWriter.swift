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

    private init(repository: ChunkRepository, session: ChunkWriteSession, spool: String) {
        self.repository = repository
        self.session = session
        self.spool = spool
    }

    /// nil when `path` is no format-2 repository (a folder of archives, or
    /// nothing yet: the engine writes archives there, as before).
    static func start(_ options: BackupOptions, repository path: String) throws -> RepositoryBackupWriter? {
        guard Files.exists(path) else { return nil }
        let store = LocalFolderStore(root: path)
        guard try ChunkRepository.exists(in: store) else { return nil }
        let repository = try ChunkRepository.open(store: store, credentials: .init(keyFile: options.keyFile))
        let session = try ChunkWriteSession(repository: repository)
        let spool = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/pgvault-spool.partial-\(getpid())"
        Files.removeTree(spool)
        try Files.makeDirectory(spool)
        try Files.makeDirectory(spool + "/schema")
        return RepositoryBackupWriter(repository: repository, session: session, spool: spool)
    }

    /// Finishes the packs, then writes the catalog and the manifest under a
    /// name no other backup has. Returns the name and the bytes the backup
    /// added to the repository.
    func publish(_ manifest: inout Manifest, database: String, started: Date) throws -> (name: String, added: Int64) {
        try Cancellation.check()
        manifest.packs = try session.finish()
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

    func abort() { session.abort() }
}
