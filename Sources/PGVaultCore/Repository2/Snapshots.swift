import AgeFormat
import Foundation

/// What the writer keeps of each backup for `list` and `prune` without the
/// identity: `snapshots/<name>/catalog`, sealed with the repository key.
/// It names the chunks and packs the backup refers to (garbage collection
/// needs them) and its sizes, never table data or the schema.
public struct SnapshotCatalog: Codable, Sendable, Equatable {
    public var format = "pgvault-catalog"
    public var name: String
    public var database: String
    public var startedAt: String
    public var completedAt: String
    public var rows: Int64
    public var units: Int
    /// Raw bytes of the backup's COPY streams and schema scripts.
    public var logicalBytes: Int64
    /// Stored bytes of the chunks it refers to (each chunk once).
    public var storedBytes: Int64
    /// Bytes of the packs this backup wrote: what it added.
    public var addedBytes: Int64
    public var newChunks: Int
    public var reusedChunks: Int
    /// Every chunk id it refers to, sorted, each once.
    public var chunks: [String]
    /// Every pack it refers to.
    public var packs: [String]
    /// Its units that carry a fingerprint (their names, columns, row counts
    /// and digests and chunk lists; no table data): the next backup of the
    /// database takes those whose fingerprints have not changed from here.
    public var fingerprinted: [Manifest.Unit]?

    init(manifest: Manifest, name: String, statistics: ChunkWriteSession.Statistics) {
        self.name = name
        database = manifest.database.name
        startedAt = manifest.startedAt
        completedAt = manifest.completedAt
        rows = manifest.units.reduce(0) { $0 + $1.rows }
        units = manifest.units.count
        let usage = ChunkUsage(manifest: manifest, statistics: statistics)
        logicalBytes = usage.logicalBytes
        storedBytes = usage.storedBytes
        addedBytes = usage.addedBytes
        newChunks = usage.newChunks
        reusedChunks = usage.reusedChunks
        chunks = usage.chunks
        packs = usage.packs
        let fingerprinted = manifest.units.filter { $0.fingerprint != nil }
        self.fingerprinted = fingerprinted.isEmpty ? nil : fingerprinted
    }
}

/// A backup's or a cold archive's catalog: what a repack rewrites of it is
/// its list of packs.
protocol ChunkCatalog: Codable, Sendable {
    var packs: [String] { get set }
}

extension SnapshotCatalog: ChunkCatalog {}
extension ColdRepositoryCatalog: ChunkCatalog {}

/// What a catalog (a backup's or a cold archive's) records of the chunks its
/// manifest uses, and of what its writing added.
struct ChunkUsage {
    var logicalBytes: Int64 = 0
    var storedBytes: Int64 = 0
    var addedBytes: Int64
    var newChunks: Int
    var reusedChunks: Int
    /// Sorted, each once.
    var chunks: [String]
    var packs: [String]

    init(manifest: Manifest, statistics: ChunkWriteSession.Statistics) {
        var stored: [String: Int] = [:]
        for ref in Snapshots.chunkLists(manifest).joined() {
            logicalBytes += Int64(ref.rawLength)
            stored[ref.id] = ref.length
        }
        storedBytes = stored.values.reduce(0) { $0 + Int64($1) }
        addedBytes = statistics.packBytes
        newChunks = statistics.newChunks
        reusedChunks = statistics.reusedChunks
        chunks = stored.keys.sorted()
        packs = (manifest.packs ?? []).map(\.id)
    }
}

/// The backups of a format-2 repository: `snapshots/<name>/catalog` and
/// `snapshots/<name>/manifest`. A backup exists once its manifest does; a
/// catalog without one is a backup that never finished (or a prune that was
/// interrupted), listed as incomplete and removed by prune.
public enum Snapshots {
    static func catalogKey(_ name: String) -> String { "snapshots/\(name)/catalog" }
    static func manifestKey(_ name: String) -> String { "snapshots/\(name)/manifest" }

    /// Every member's chunk list: the schema scripts', then the units'.
    static func chunkLists(_ manifest: Manifest) -> [[Manifest.ChunkRef]] {
        (manifest.schema?.members ?? []).compactMap(\.chunks) + manifest.units.compactMap(\.chunks)
    }

    /// Every chunk reference of the manifest (schema scripts' and units')
    /// replaced by `transform`'s: a repack's move of chunks to new packs.
    static func mapChunks(_ manifest: inout Manifest, _ transform: (Manifest.ChunkRef) throws -> Manifest.ChunkRef) rethrows {
        manifest.schema = try manifest.schema?.mapMembers { member in
            var member = member
            member.chunks = try member.chunks?.map(transform)
            return member
        }
        for i in manifest.units.indices {
            manifest.units[i].chunks = try manifest.units[i].chunks?.map(transform)
        }
    }

    /// Writes the catalog (claiming the name: `ifAbsent`) and then the
    /// manifest, MAC-trailed with the key, then encrypted to the recipients.
    static func write(_ catalog: SnapshotCatalog, manifest: Manifest, in repository: ChunkRepository) throws {
        try writeSealed(catalog, at: catalogKey(catalog.name), in: repository)
        try writeManifest(manifest, at: manifestKey(catalog.name), what: catalog.name, in: repository)
    }

    /// A catalog object (backup or cold archive): JSON sealed with the key;
    /// `ifAbsent` claims its name, unless `replacing` (a repack's rewrite).
    static func writeSealed(_ catalog: some Encodable, at objectKey: String, in repository: ChunkRepository, replacing: Bool = false) throws {
        try repository.store.put(
            objectKey, bytes: try Sealing.seal(Array(try JSONEncoder().encode(catalog)), key: repository.key, objectKey: objectKey),
            ifAbsent: !replacing)
    }

    /// A manifest object (backup or cold archive): MAC-trailed with the key,
    /// then encrypted to the recipients. Written last: it publishes. A
    /// repack's rewrite is `replacing`: one put, so the object is old or new.
    static func writeManifest(_ manifest: Manifest, at objectKey: String, what: String, in repository: ChunkRepository, replacing: Bool = false) throws {
        var bytes = try Sealing.macTrailed(try manifest.encoded(), key: repository.key, objectKey: objectKey)
        if let recipients = try repository.recipients() {
            do { bytes = try Age.encrypt(bytes, to: recipients) } catch {
                throw PGVaultError.archive("cannot encrypt the manifest of \(what): \(error)")
            }
        }
        try repository.store.put(objectKey, bytes: bytes, ifAbsent: !replacing)
    }

    /// The catalogs of every backup, complete or not, newest first.
    static func catalogs(_ repository: ChunkRepository) throws -> [(catalog: SnapshotCatalog, complete: Bool)] {
        let listing = try repository.store.list(prefix: "snapshots/")
        let keys = Set(listing.map(\.key))
        var out: [(SnapshotCatalog, Bool)] = []
        for object in listing where object.key.hasSuffix("/catalog") {
            let bytes = try repository.store.bytes(of: object.key, limit: 256 << 20)
            let plain = try Sealing.open(bytes, key: repository.key, objectKey: object.key, location: repository.location)
            guard let catalog = try? JSONDecoder().decode(SnapshotCatalog.self, from: Data(plain)), catalogKey(catalog.name) == object.key else {
                throw PGVaultError.archive("\(repository.location)/\(object.key) is not a pgvault catalog; run `pgvault check --repo \(repository.location)`")
            }
            out.append((catalog, keys.contains(manifestKey(catalog.name))))
        }
        return out.sorted { $0.0.startedAt > $1.0.startedAt }
    }

    /// The backup `name` (or the newest complete one, for `latest`).
    static func resolve(_ name: String, in repository: ChunkRepository) throws -> String {
        guard name == "latest" else {
            guard try repository.store.head(manifestKey(name)) != nil else {
                throw PGVaultError.archive("repository '\(repository.location)' has no backup '\(name)'; see `pgvault list --repo \(repository.location)`")
            }
            return name
        }
        guard let newest = try catalogs(repository).first(where: \.complete) else {
            throw PGVaultError.archive("repository '\(repository.location)' holds no complete backup yet; run a backup first")
        }
        return newest.catalog.name
    }

    /// Reads, decrypts and authenticates the manifest of backup `name`.
    static func manifest(_ name: String, in repository: ChunkRepository) throws -> Manifest {
        try manifest(at: manifestKey(name), what: "backup \(name)", in: repository) {
            PGVaultError.archive("repository '\(repository.location)' has no backup '\(name)'; see `pgvault list --repo \(repository.location)`")
        }
    }

    /// Reads, decrypts and authenticates the manifest object `objectKey`
    /// (backup or cold archive); `missing` is the error when it is absent.
    static func manifest(at objectKey: String, what: String, in repository: ChunkRepository, missing: () -> PGVaultError) throws -> Manifest {
        var bytes: [UInt8]
        do {
            bytes = try repository.store.bytes(of: objectKey, limit: 512 << 20)
        } catch let error as PGVaultError where error.isMissingObject {
            throw missing()
        }
        if repository.config.encrypted {
            try repository.requireIdentity("reading \(what)")
            do { bytes = try Age.decrypt(bytes, with: repository.identities) } catch {
                throw PGVaultError.archive(ChunkRepository.identityMismatch(repository.identityFile, object: objectKey, location: repository.location, error: error))
            }
        }
        let body = try Sealing.openMACTrailed(bytes, key: repository.key, objectKey: objectKey, location: repository.location)
        let manifest = try Manifest.decode(body, source: "\(repository.location)/\(objectKey)")
        guard manifest.packs != nil else {
            throw PGVaultError.archive("\(repository.location)/\(objectKey) lists no packs, so it is no repository manifest; run `pgvault check --repo \(repository.location)`")
        }
        return manifest
    }
}

extension ChunkRepository {
    /// Every backup, newest first, for `list` and `prune`, from the catalogs
    /// (no identity needed). A catalog whose manifest is missing is an
    /// unfinished backup: `incomplete`.
    public func entries() throws -> [Repository.Entry] {
        try Snapshots.catalogs(self).map { c, complete in
            let seconds = ISO8601.parse(c.completedAt).flatMap { end in ISO8601.parse(c.startedAt).map { end.timeIntervalSince($0) } }
            return Repository.Entry(
                name: c.name, path: location + "/" + Snapshots.manifestKey(c.name), status: complete ? "complete" : "incomplete",
                database: c.database, startedAt: c.startedAt, completedAt: c.completedAt, seconds: seconds, rows: c.rows,
                bytes: c.storedBytes, units: c.units, logicalBytes: c.logicalBytes, addedBytes: c.addedBytes)
        }
    }

    /// Opens the format-2 repository `--repo` names: a folder, or
    /// `s3://BUCKET/PREFIX` (configured the AWS way, docs/storage.md).
    public static func open(path: String, credentials: Credentials) throws -> ChunkRepository {
        if case .s3 = RepositoryLocation(path) {
            return try open(store: try RepositoryLocation(path).store(), credentials: credentials)
        }
        guard Files.exists(path) else {
            throw PGVaultError.archive("repository '\(path)' does not exist; check the path (`pgvault repo init --repo \(path)` creates one)", wholeArchive: true)
        }
        try Repository.checkFolder(path)
        return try open(store: LocalFolderStore(root: path), credentials: credentials)
    }

    /// Is `path` a format-2 repository? A folder holding its config; an
    /// `s3://` location always answers yes: there is no other kind of
    /// repository in a bucket, and opening it says if its config is missing.
    public static func exists(path: String) -> Bool {
        if case .s3 = RepositoryLocation(path) { return true }
        return Files.exists(path + "/" + RepositoryConfig.objectKey)
    }
}
