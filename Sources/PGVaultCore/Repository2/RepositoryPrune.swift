import Foundation
import PGClient

/// `prune` on a format-2 repository: the retention policy over its backups,
/// then garbage collection of the packs no remaining backup refers to
/// (docs/repository-format.md, "Prune").
///
/// Order, so that an interruption anywhere leaves a repository `check`
/// passes and the next prune finishes the work: a backup's manifest is
/// deleted first (from then on it is no backup), then its catalog; a pack's
/// index object goes before the pack (a pack without one is garbage the next
/// prune removes). It runs under the repository's exclusive lock, so no
/// backup is writing packs meanwhile (a backup's packs are not in any
/// catalog until it finishes).
public enum RepositoryPrune {
    public struct Result: Codable, Sendable {
        public var decisions: [Repository.PruneDecision]
        /// Catalogs of backups that never finished, removed.
        public var unfinished: [String]
        public var packsDeleted: Int
        /// Multipart uploads that failed backups left in an S3 bucket,
        /// aborted (nil for a dry run).
        public var uploadsAborted: Int?
        public var bytesFreed: Int64
        /// Live packs holding some garbage (over 1 %), and how much, before any repack.
        public var packsWithGarbage: Int
        public var garbageBytesKept: Int64
        /// Of those, the packs at least `repackThreshold` % garbage: the ones to repack.
        public var packsToRepack: Int = 0
        public var repackThreshold: Int
        /// What the repack did; nil when none ran (a dry run, nothing to
        /// repack, or an encrypted repository without the identity:
        /// ``repackSkipped`` says which).
        public var repack: RepositoryRepack.Result?
        public var repackSkipped: String?
    }

    /// Repack a pack when at least this share of it (percent) is garbage.
    public static let defaultRepackThreshold = 50

    public static func run(
        _ repository: ChunkRepository, policy: Repository.Policy, dryRun: Bool, repackThreshold: Int = defaultRepackThreshold
    ) throws -> Result {
        let store = repository.store
        let lock = try RepositoryLock.acquire(store: store, kind: dryRun ? .shared : .exclusive, command: dryRun ? "prune --dry-run" : "prune")
        defer { try? lock.release() }
        let catalogs = try Snapshots.catalogs(repository)
        let entries = try repository.entries()
        let decisions = Repository.plan(entries, policy: policy)
        let dropped = Set(decisions.filter { !$0.keep }.map(\.name))
        let unfinished = catalogs.filter { !$0.complete }.map(\.catalog.name)
        let kept = catalogs.filter { $0.complete && !dropped.contains($0.catalog.name) }.map(\.catalog)

        // What stays referenced: packs by the kept catalogs' pack lists,
        // chunks by their chunk lists; cold archives' (cold or restored) always.
        let coldCatalogs = try ColdRepository.catalogs(repository)
        let cold = ColdRepository.live(coldCatalogs)
        let livePacks = Set(kept.flatMap(\.packs)).union(cold.packs)
        let liveChunks = Set((kept.flatMap(\.chunks) + cold.chunks).compactMap(ChunkID.init(hex:)))
        let index = try ChunkIndex.load(repository)
        var liveBytes: [Int32: Int64] = [:]
        for (id, at) in index.chunks where liveChunks.contains(id) { liveBytes[at.pack, default: 0] += Int64(at.length) }
        let indexed = Set(index.packs.map(\.objectKey))
        let deadIndexed = index.packs.filter { !livePacks.contains($0.id) }
        let unindexed = try store.list(prefix: "packs/").filter { !indexed.contains($0.key) }

        var result = Result(
            decisions: decisions, unfinished: unfinished,
            packsDeleted: deadIndexed.count + unindexed.count,
            bytesFreed: deadIndexed.reduce(0) { $0 + $1.size } + unindexed.reduce(0) { $0 + $1.size },
            packsWithGarbage: 0, garbageBytesKept: 0, repackThreshold: repackThreshold)
        var toRepack: [Manifest.PackRef] = []
        for (number, pack) in index.packs.enumerated() where livePacks.contains(pack.id) {
            let payload = pack.size - pack.headerBytes.int64
            let garbage = max(0, payload - (liveBytes[Int32(number)] ?? 0))
            // Age adds 16 bytes per 64 KiB segment: not garbage.
            if garbage > pack.size / 100 {
                result.packsWithGarbage += 1
                result.garbageBytesKept += garbage
                if garbage * 100 >= payload * Int64(repackThreshold) { toRepack.append(pack) }
            }
        }
        result.packsToRepack = toRepack.count
        if !toRepack.isEmpty && !repository.canReadData {
            result.repackSkipped = "an encrypted repository's packs are repacked only with its identity: run prune with --identity where the identity is"
        }
        guard !dryRun else { return result }
        try lock.checkHeld()

        for name in dropped.sorted() + unfinished {
            try Cancellation.check()
            try store.delete(Snapshots.manifestKey(name))
            try store.delete(Snapshots.catalogKey(name))
        }
        try DrillRecords.removeAll(except: Set(kept.map(\.name)), in: repository)
        for folder in cold.incomplete {
            try Cancellation.check()
            try ColdRepository.remove(folder, in: repository)
        }
        for pack in deadIndexed {
            try Cancellation.check()
            try store.delete(ChunkIndex.objectKey(pack: pack.id))
            try store.delete(pack.objectKey)
        }
        for object in unindexed {
            try Cancellation.check()
            try store.delete(object.key)
        }
        // Under the exclusive lock no backup is uploading: every upload still open is a failed run's.
        result.uploadsAborted = try store.discardUnfinishedWrites()
        if !toRepack.isEmpty && repository.canReadData {
            result.repack = try RepositoryRepack.run(repository, candidates: toRepack, documents: documents(kept, cold: coldCatalogs), lock: lock)
        }
        return result
    }

    /// What a repack may rewrite: the kept backups and the published cold archives.
    private static func documents(_ kept: [SnapshotCatalog], cold: [ColdRepository.Stored]) -> [RepositoryRepack.Document] {
        let backups = kept.map {
            RepositoryRepack.Document(
                what: "backup \($0.name)", catalogKey: Snapshots.catalogKey($0.name), manifestKey: Snapshots.manifestKey($0.name), catalog: $0)
        }
        let published = cold.filter { $0.status != "incomplete" }.map {
            RepositoryRepack.Document(
                what: "cold archive \($0.folder.dropLast())", catalogKey: ColdRepository.catalogKey($0.folder),
                manifestKey: ColdRepository.manifestKey($0.folder), catalog: $0.catalog)
        }
        return backups + published
    }
}

private extension Int {
    var int64: Int64 { Int64(self) }
}
