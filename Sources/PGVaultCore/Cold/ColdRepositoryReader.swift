import Foundation

/// restore-partitions' view of a format-2 repository: opened with the
/// identity (table data and manifests are encrypted), under a shared lock
/// (prune waits) from planning until the archives have moved to `restored/`.
struct ColdRepositoryReader: Sendable {
    let repository: ChunkRepository
    let lock: RepositoryLock

    /// nil when `--repo` is a folder of archives.
    static func open(_ options: ColdRestoreOptions) throws -> ColdRepositoryReader? {
        guard ChunkRepository.exists(path: options.repo) else { return nil }
        let repository = try ChunkRepository.open(path: options.repo, credentials: .init(keyFile: options.keyFile, identityFile: options.identityFile))
        try repository.requireIdentity("restore-partitions")
        let lock = try RepositoryLock.acquire(store: repository.store, kind: .shared, command: "restore-partitions", patience: 30)
        return ColdRepositoryReader(repository: repository, lock: lock)
    }

    func entries() throws -> [ColdStore.Entry] {
        try ColdRepository.entries(repository, includeRestored: false)
    }

    /// An entry's path is `<repo>/cold/<table>/<partition>`: its folder of objects.
    func folder(_ path: String) -> String {
        String(path.dropFirst(repository.location.count + 1)) + "/"
    }

    /// Reads and authenticates the archive's manifest (a wrong identity fails here).
    func open(_ path: String) throws -> RepositoryBackup {
        try ColdRepository.open(folder(path), in: repository, lock: lock)
    }

    /// Before anything changes: the structure (every chunk indexed, every
    /// pack at its size), then every member read, each chunk checked
    /// against its id and each member against its SHA-256.
    static func verify(_ backup: RepositoryBackup, path: String) throws {
        try ColdRepository.checkStructure(backup.manifest, in: backup.repository, what: path, consequence: "nothing was restored")
        do {
            let source = try RepositoryArchive(backup)
            for unit in backup.manifest.units {
                try Archive.streamUnit(unit, from: source) { _ in }
            }
        } catch let error as PGVaultError where error.kind == .archive {
            throw PGVaultError.archive("cold archive \(path) does not verify (\(error.message)); nothing was restored")
        }
    }

    /// Moves the archive at `path` to `restored/`; returns its new path.
    func markRestored(_ path: String, items: [PartitionRestorer.Item], stamp: String) throws -> String {
        guard let manifest = items.first(where: { $0.path == path })?.manifest else { return path }
        let target = try ColdRepository.markRestored(folder(path), manifest: manifest, stamp: stamp, in: repository)
        return repository.location + "/" + String(target.dropLast())
    }
}
