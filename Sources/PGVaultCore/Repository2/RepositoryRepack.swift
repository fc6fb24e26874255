import AgeFormat
import Foundation
import PGClient

/// The last step of `prune` on a format-2 repository: packs that are mostly
/// garbage (chunks no remaining backup or cold archive uses) are rewritten.
/// Their live chunks are copied, as stored (zstd frames, not recompressed),
/// into new packs, after each is checked against its id; every manifest and
/// catalog that referred to them is rewritten to the new places; then the
/// old packs go (docs/repository-format.md, "Prune").
///
/// Reading a pack and a manifest takes the identity of an encrypted
/// repository, and rewriting a manifest takes the repository key: a repack
/// runs where both are at hand, under prune's exclusive lock.
///
/// Order, so that an interruption anywhere leaves a repository `check`
/// passes and whose every backup restores:
/// 1. the new packs, each followed by its index object (a chunk is then
///    indexed twice, which the index allows);
/// 2. per backup or cold archive: its catalog listing the old packs and the
///    new (prune keeps both while either may be referred to), its manifest
///    (one put: old or new, never half), its catalog listing the new;
/// 3. each old pack's index object, then the pack.
/// Interrupted in 1, the new packs are in no catalog and the next prune
/// deletes them; in 2 or 3, the old packs are still listed where they are
/// used, and the next prune finishes the job.
public enum RepositoryRepack {
    public struct Result: Codable, Sendable, Equatable {
        /// Packs rewritten (and deleted).
        public var packsRepacked = 0
        /// The old packs' bytes, now freed.
        public var bytesFreed: Int64 = 0
        /// Live chunks copied, and the new packs they went into.
        public var chunksCopied = 0
        public var packsWritten = 0
        public var bytesWritten: Int64 = 0
        /// Backups and cold archives whose manifest and catalog were rewritten.
        public var manifestsRewritten = 0
    }

    /// A backup or a cold archive: its catalog and where its objects lie.
    struct Document {
        var what: String
        var catalogKey: String
        var manifestKey: String
        var catalog: any ChunkCatalog
    }

    /// Rewrites the packs `candidates` (each in the index, each used by some
    /// of `documents`), under `lock`.
    static func run(_ repository: ChunkRepository, candidates: [Manifest.PackRef], documents: [Document], lock: RepositoryLock) throws -> Result {
        var result = Result()
        guard !candidates.isEmpty else { return result }
        try repository.requireIdentity("repacking (prune reads the packs it rewrites)")
        let old = Set(candidates.map(\.id))

        // The manifests that use an old pack, and the chunks they use in it.
        var affected: [(Document, Manifest)] = []
        var live: [String: [String: Manifest.ChunkRef]] = [:]
        let number = Dictionary(uniqueKeysWithValues: candidates.enumerated().map { ($1.id, $0) })
        for document in documents where !old.isDisjoint(with: document.catalog.packs) {
            try Cancellation.check()
            let manifest = try Snapshots.manifest(at: document.manifestKey, what: document.what, in: repository) {
                PGVaultError.archive("\(document.what) lost its manifest while prune repacked; run prune again")
            }
            let packs = manifest.packs ?? []
            for ref in Snapshots.chunkLists(manifest).joined() where ref.pack >= 0 && ref.pack < packs.count {
                guard let n = number[packs[ref.pack].id] else { continue }
                var inCandidate = ref
                inCandidate.pack = n
                live[packs[ref.pack].id, default: [:]][ref.id] = inCandidate
            }
            affected.append((document, manifest))
        }

        let moved = try copy(live, from: candidates, in: repository, lock: lock, result: &result)
        for (document, manifest) in affected {
            try Cancellation.check()
            try lock.checkHeld()
            let rewritten = try remap(manifest, moved: moved, old: old, what: document.what)
            var catalog = document.catalog
            catalog.packs = Array(Set(catalog.packs).union((rewritten.packs ?? []).map(\.id))).sorted()
            try Snapshots.writeSealed(catalog, at: document.catalogKey, in: repository, replacing: true)
            try Snapshots.writeManifest(rewritten, at: document.manifestKey, what: document.what, in: repository, replacing: true)
            catalog.packs = (rewritten.packs ?? []).map(\.id)
            try Snapshots.writeSealed(catalog, at: document.catalogKey, in: repository, replacing: true)
            result.manifestsRewritten += 1
        }
        for pack in candidates {
            try Cancellation.check()
            try lock.checkHeld()
            try repository.store.delete(ChunkIndex.objectKey(pack: pack.id))
            try repository.store.delete(pack.objectKey)
            result.packsRepacked += 1
            result.bytesFreed += pack.size
        }
        return result
    }

    /// Copies the live chunks of the old packs, in pack and offset order,
    /// into new packs of the repository's target size (each committed, then
    /// indexed). Returns where each chunk went.
    private static func copy(
        _ live: [String: [String: Manifest.ChunkRef]], from candidates: [Manifest.PackRef], in repository: ChunkRepository,
        lock: RepositoryLock, result: inout Result
    ) throws -> [String: (ChunkIndex.Entry, Manifest.PackRef)] {
        let reader = try ChunkReader(repository: repository, packs: candidates)
        let recipients = try repository.recipients()
        var moved: [String: (ChunkIndex.Entry, Manifest.PackRef)] = [:]
        var copied = Set<String>()
        var writer: PackWriter?
        func finish() throws {
            guard let pack = writer else { return }
            writer = nil
            let ref = try pack.finish()
            try repository.store.put(ChunkIndex.objectKey(pack: ref.id), bytes: try ChunkIndex.encode(pack: ref, entries: pack.entries, key: repository.key))
            for entry in pack.entries { moved[entry.id.description] = (entry, ref) }
            result.packsWritten += 1
            result.bytesWritten += ref.size
        }
        do {
            for pack in candidates {
                try lock.checkHeld()
                for ref in (live[pack.id] ?? [:]).values.sorted(by: { $0.offset < $1.offset }) {
                    try Cancellation.check()
                    // A chunk in two old packs (stored twice) is copied once.
                    guard !copied.contains(ref.id), let id = ChunkID(hex: ref.id) else { continue }
                    let frame = try reader.verifiedFrame(ref, member: "pack \(pack.id)")
                    let current = try writer ?? PackWriter(store: repository.store, recipients: recipients)
                    writer = current
                    _ = try current.append(id, rawLength: ref.rawLength) { write in try frame.withUnsafeBytes { try write($0) } }
                    copied.insert(ref.id)
                    result.chunksCopied += 1
                    if current.plaintextBytes >= Int64(repository.config.packTargetBytes) { try finish() }
                }
            }
            try finish()
        } catch {
            // New packs already finished are in no catalog: the next prune deletes them.
            writer?.abort()
            throw error
        }
        return moved
    }

    /// The manifest with every chunk of an old pack pointed at its copy, and
    /// its pack table rebuilt: the packs it still uses, in first-use order.
    static func remap(_ manifest: Manifest, moved: [String: (ChunkIndex.Entry, Manifest.PackRef)], old: Set<String>, what: String) throws -> Manifest {
        let before = manifest.packs ?? []
        var table: [Manifest.PackRef] = []
        var numbers: [String: Int] = [:]
        func number(_ pack: Manifest.PackRef) -> Int {
            if let n = numbers[pack.id] { return n }
            numbers[pack.id] = table.count
            table.append(pack)
            return table.count - 1
        }
        var out = manifest
        try Snapshots.mapChunks(&out) { ref in
            guard ref.pack >= 0, ref.pack < before.count else {
                throw PGVaultError.archive("the manifest of \(what) refers to pack #\(ref.pack), which it does not list; the manifest is damaged")
            }
            var ref = ref
            let pack = before[ref.pack]
            guard old.contains(pack.id) else {
                ref.pack = number(pack)
                return ref
            }
            guard let (entry, to) = moved[ref.id] else {
                throw PGVaultError.archive("chunk \(ref.id.prefix(16)) of \(what) was not copied out of pack \(pack.id); the repository is whole (old packs stay until every manifest is rewritten): run prune again")
            }
            ref.pack = number(to)
            ref.offset = entry.offset
            ref.length = entry.length
            return ref
        }
        out.packs = table
        return out
    }
}
