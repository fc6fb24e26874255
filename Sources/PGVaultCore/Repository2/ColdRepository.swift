import Foundation

/// What `list --cold` and `prune` need of a cold archive in a format-2
/// repository, without the identity: `cold/<schema.parent>/<partition>/catalog`,
/// sealed with the repository key like a backup's ``SnapshotCatalog``. It
/// names the chunks and packs the archive refers to (prune keeps them).
public struct ColdRepositoryCatalog: Codable, Sendable, Equatable {
    public var format = "pgvault-cold-catalog"
    /// The partitioned table and the partition, `schema.name`.
    public var table: String
    public var partition: String
    public var from: String
    public var to: String
    public var database: String
    public var archivedAt: String
    public var rows: Int64
    public var referencingRows: [String: Int64]
    /// Raw bytes of its COPY streams.
    public var logicalBytes: Int64
    /// Stored bytes of the chunks it refers to (each once).
    public var storedBytes: Int64
    /// Bytes of the packs the archive wrote: what it added.
    public var addedBytes: Int64
    public var newChunks: Int
    public var reusedChunks: Int
    /// Every chunk id it refers to, sorted, each once.
    public var chunks: [String]
    /// Every pack it refers to.
    public var packs: [String]

    init(manifest: Manifest, info: ColdArchiveInfo, statistics: ChunkWriteSession.Statistics) {
        table = info.parent
        partition = info.partition.qualifiedName
        from = info.from
        to = info.to
        database = manifest.database.name
        archivedAt = manifest.completedAt
        rows = info.partitionUnit.rows
        referencingRows = Dictionary(info.referencingUnits.map { ($0.qualifiedTable, $0.rows) }, uniquingKeysWith: +)
        let usage = ChunkUsage(manifest: manifest, statistics: statistics)
        logicalBytes = usage.logicalBytes
        storedBytes = usage.storedBytes
        addedBytes = usage.addedBytes
        newChunks = usage.newChunks
        reusedChunks = usage.reusedChunks
        chunks = usage.chunks
        packs = usage.packs
    }
}

/// Cold archives in a format-2 repository (docs/cold-storage.md, "In a
/// format-2 repository"): per archive a folder of two objects,
///
///     cold/<schema.parent>/<partition>/catalog     sealed: list, prune
///     cold/<schema.parent>/<partition>/manifest    MAC-trailed, then age: restore
///     cold/<schema.parent>/restored/<partition>.<UTC time>/{catalog,manifest}
///
/// written as a backup's are (``Snapshots``): catalog first, manifest last.
/// The manifest is what publishes an archive; a catalog without it is
/// `incomplete` (a run in progress or one that died) and never restored.
enum ColdRepository {
    static func folder(parent: String, partition: String) -> String {
        "\(ColdStore.folderName)/\(ColdStore.safe(parent))/\(ColdStore.safe(partition))/"
    }

    static func restoredFolder(of folder: String, stamp: String) -> String {
        let parts = folder.split(separator: "/")
        return "\(parts[0])/\(parts[1])/\(ColdStore.restoredFolder)/\(parts[2]).\(stamp)/"
    }

    static func catalogKey(_ folder: String) -> String { folder + "catalog" }
    static func manifestKey(_ folder: String) -> String { folder + "manifest" }

    struct Stored: Sendable {
        var folder: String
        var catalog: ColdRepositoryCatalog
        /// `cold`, `restored` or `incomplete`.
        var status: String
    }

    /// Every cold archive's catalog, with its status from its folder and
    /// whether its manifest is there.
    static func catalogs(_ repository: ChunkRepository) throws -> [Stored] {
        let listing = try repository.store.list(prefix: ColdStore.folderName + "/")
        let keys = Set(listing.map(\.key))
        var out: [Stored] = []
        for object in listing where object.key.hasSuffix("/catalog") {
            let folder = String(object.key.dropLast("catalog".count))
            let bytes = try repository.store.bytes(of: object.key, limit: 256 << 20)
            let plain = try Sealing.open(bytes, key: repository.key, objectKey: object.key, location: repository.location)
            guard let catalog = try? JSONDecoder().decode(ColdRepositoryCatalog.self, from: Data(plain)), catalog.format == "pgvault-cold-catalog" else {
                throw PGVaultError.archive("\(repository.location)/\(object.key) is not a pgvault cold catalog; run `pgvault check --repo \(repository.location)`")
            }
            let published = keys.contains(manifestKey(folder))
            let status = !published ? "incomplete" : folder.contains("/\(ColdStore.restoredFolder)/") ? "restored" : "cold"
            out.append(Stored(folder: folder, catalog: catalog, status: status))
        }
        return out
    }

    /// `list --cold`, from the catalogs alone (no identity needed).
    static func entries(_ repository: ChunkRepository, includeRestored: Bool) throws -> [ColdStore.Entry] {
        try catalogs(repository).filter { includeRestored || $0.status != "restored" }.map { s in
            let c = s.catalog
            return ColdStore.Entry(
                table: c.table, partition: c.partition, from: c.from, to: c.to, status: s.status, rows: c.rows,
                referencingRows: c.referencingRows, bytes: c.storedBytes, archivedAt: c.archivedAt,
                path: repository.location + "/" + String(s.folder.dropLast()))
        }.sorted { ($0.table, $0.from, $0.status) < ($1.table, $1.from, $1.status) }
    }

    /// What prune keeps and check expects indexed: the packs and chunks of
    /// every published cold archive, restored ones included (they are kept
    /// for reference, as in a folder repository).
    static func live(_ all: [Stored]) -> (packs: Set<String>, chunks: [String], incomplete: [String]) {
        let published = all.filter { $0.status != "incomplete" }
        return (Set(published.flatMap(\.catalog.packs)), published.flatMap(\.catalog.chunks), all.filter { $0.status == "incomplete" }.map(\.folder))
    }

    /// Removes what an earlier run left in `folder`: its manifest first (from
    /// then on it is no archive), then its catalog.
    static func remove(_ folder: String, in repository: ChunkRepository) throws {
        try repository.store.delete(manifestKey(folder))
        try repository.store.delete(catalogKey(folder))
    }

    /// Step 2 of archive-partitions without reading the packs (an encrypted
    /// repository's writer cannot): every chunk the manifest lists is
    /// indexed in the pack the manifest names, at its offset and length, and
    /// every pack is present at its size. The bytes themselves are vouched
    /// for by step 3's comparison of row count and digest with the live rows.
    static func checkStructure(_ manifest: Manifest, in repository: ChunkRepository, what: String, consequence: String) throws {
        try checkStructure(manifest, index: try ChunkIndex.load(repository), in: repository, what: what, consequence: consequence)
    }

    static func checkStructure(_ manifest: Manifest, index: ChunkIndex, in repository: ChunkRepository, what: String, consequence: String) throws {
        let packs = manifest.packs ?? []
        for pack in packs {
            guard let size = try repository.store.head(pack.objectKey)?.size, size == pack.size else {
                throw PGVaultError.archive("the cold archive of \(what) does not verify: pack \(pack.objectKey) is missing or not \(pack.size) bytes; \(consequence)")
            }
        }
        for ref in Snapshots.chunkLists(manifest).joined() {
            guard let id = ChunkID(hex: ref.id), ref.pack >= 0, ref.pack < packs.count,
                  index.holds(id, pack: packs[ref.pack].id, offset: ref.offset, length: ref.length) else {
                throw PGVaultError.archive("the cold archive of \(what) does not verify: chunk \(ref.id.prefix(16)) is not indexed where its manifest says; \(consequence)")
            }
        }
    }

    /// A restored archive moves to `restored/`: catalog and manifest are
    /// written again under the new folder (each is authenticated with its
    /// own key, so bytes cannot just be copied), then the old manifest and
    /// catalog are deleted. Needs the manifest read (the identity).
    static func markRestored(_ folder: String, manifest: Manifest, stamp: String, in repository: ChunkRepository) throws -> String {
        guard let stored = try catalogs(repository).first(where: { $0.folder == folder }) else {
            throw PGVaultError.archive("the cold archive \(repository.location)/\(folder) vanished while it was restored")
        }
        let target = restoredFolder(of: folder, stamp: stamp)
        try Snapshots.writeSealed(stored.catalog, at: catalogKey(target), in: repository)
        try Snapshots.writeManifest(manifest, at: manifestKey(target), what: stored.catalog.partition, in: repository)
        try remove(folder, in: repository)
        return target
    }

    /// Opens cold archive `folder` for reading (its manifest needs the
    /// identity of an encrypted repository), under `lock`.
    static func open(_ folder: String, in repository: ChunkRepository, lock: RepositoryLock) throws -> RepositoryBackup {
        let manifest = try Snapshots.manifest(at: manifestKey(folder), what: "cold archive \(folder)", in: repository) {
            PGVaultError.archive("repository '\(repository.location)' has no cold archive \(folder); see `pgvault list --repo \(repository.location) --cold`")
        }
        return RepositoryBackup(repository: repository, name: String(folder.dropLast()), manifest: manifest, lock: lock)
    }
}

extension ChunkRepository {
    /// `list --cold`: the cold archives, from their catalogs (no identity).
    public func coldEntries(includeRestored: Bool = false) throws -> [ColdStore.Entry] {
        try ColdRepository.entries(self, includeRestored: includeRestored)
    }
}

extension ColdRepository {
    /// `check`: each published cold archive's chunks are indexed; with the
    /// identity (or unencrypted), its manifest is authenticated and its
    /// chunks lie where the index says. (`--read-data` reads every indexed
    /// pack, cold archives' included.)
    static func check(_ repository: ChunkRepository, index: ChunkIndex) throws -> [VerifyFinding] {
        let all: [Stored]
        do { all = try catalogs(repository) } catch {
            return [.failed("cold", ColdStore.folderName + "/", "\(error)")]
        }
        var findings: [VerifyFinding] = []
        for stored in all where stored.status != "incomplete" {
            let name = String(stored.folder.dropLast())
            let missing = stored.catalog.chunks.filter { ChunkID(hex: $0).flatMap { index[$0] } == nil }
            if !missing.isEmpty {
                findings.append(.failed("cold", name, "\(missing.count) of its \(stored.catalog.chunks.count) chunks are not in the index", samples: Array(missing.prefix(5))))
                continue
            }
            guard repository.canReadData else {
                findings.append(.ok("cold", name, "\(stored.catalog.chunks.count) chunks indexed (its manifest is encrypted: --identity checks it too)"))
                continue
            }
            do {
                let manifest = try Snapshots.manifest(at: manifestKey(stored.folder), what: "cold archive \(name)", in: repository) {
                    PGVaultError.archive("\(name) lost its manifest while it was checked")
                }
                try checkStructure(manifest, index: index, in: repository, what: name, consequence: "restore-partitions would refuse it")
                findings.append(.ok("cold", name, "manifest authenticated; \(stored.catalog.chunks.count) chunks where the index says"))
            } catch {
                findings.append(.failed("cold", name, "\(error)"))
            }
        }
        let incomplete = all.filter { $0.status == "incomplete" }.count
        if incomplete > 0 {
            findings.append(.ok("cold", ColdStore.folderName + "/", "\(incomplete) unfinished cold archives (no manifest): never restored; prune removes them"))
        }
        return findings
    }
}
