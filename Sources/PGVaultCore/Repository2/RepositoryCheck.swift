import AgeFormat
import Foundation
import PGClient
import Support
import ZstdStream

/// `pgvault check --repo`: the repository's structure, and with `--read-data`
/// every byte of it (docs/repository-format.md, "Checking").
///
/// Structure: every index object and catalog opens with the key; every pack
/// the index names is present at its recorded size; every chunk a complete
/// backup refers to is indexed; with the identity (or unencrypted), every
/// manifest decrypts and is authenticated, and its chunks lie where the index
/// says. Read data: every pack is read whole, decrypted, and each of its
/// chunks decompressed and hashed to its id.
public enum RepositoryCheck {
    public static func run(_ repository: ChunkRepository, readData: Bool, jobs: Int, progress: (@Sendable (String) -> Void)?) async throws -> VerifyReport {
        if readData { try repository.requireIdentity("check --read-data") }
        let lock = try await Blocking.run("pgvault-check-lock") {
            try RepositoryLock.acquire(store: repository.store, kind: .shared, command: readData ? "check --read-data" : "check")
        }
        defer { try? lock.release() }
        return try await Verifier.timed {
            var findings: [VerifyFinding] = [.ok("config", RepositoryConfig.objectKey, "authenticated by the key with fingerprint \(repository.fingerprint)")]
            let (index, indexFindings) = try await Blocking.run("pgvault-check-index") { try loadIndex(repository) }
            findings += indexFindings
            progress?("index: \(index.chunks.count) chunks in \(index.packs.count) packs")
            findings += try await Blocking.run("pgvault-check-packs") { try packs(repository, index: index) }
            findings += try await Blocking.run("pgvault-check-backups") { try backups(repository, index: index) }
            findings += try await Blocking.run("pgvault-check-cold") { try ColdRepository.check(repository, index: index) }
            if readData {
                var byPack: [Int32: [(ChunkID, ChunkIndex.Location)]] = [:]
                for (id, location) in index.everyPlace { byPack[location.pack, default: []].append((id, location)) }
                let items = byPack.map { (index.packs[Int($0.key)], $0.value.sorted { $0.1.offset < $1.1.offset }) }
                let count = Locked(0)
                findings += try await WorkerPool.run(
                    items, jobs: jobs, name: "pgvault-check-data", size: { $0.0.size }, makeWorker: { _ in () }
                ) { _, item in
                    let finding = readPack(repository, pack: item.0, chunks: item.1)
                    let done = count.withLock { n -> Int in n += 1; return n }
                    progress?("read \(done)/\(items.count) packs")
                    return finding
                }
            }
            return findings
        }
    }

    /// Every index object, each opened with the key; one that does not open is a finding.
    static func loadIndex(_ repository: ChunkRepository) throws -> (ChunkIndex, [VerifyFinding]) {
        var index = ChunkIndex()
        var findings: [VerifyFinding] = []
        let objects = try repository.store.list(prefix: "index/")
        for object in objects {
            do {
                let bytes = try repository.store.bytes(of: object.key, limit: 64 << 20)
                let (pack, entries) = try ChunkIndex.decode(bytes, objectKey: object.key, key: repository.key, location: repository.location)
                index.add(pack: pack, entries: entries)
            } catch {
                findings.append(.failed("index", object.key, "\(error)"))
            }
        }
        findings.append(.ok("index", "index/", "\(objects.count) index objects, \(index.chunks.count) chunks"))
        return (index, findings)
    }

    /// Each indexed pack is there at its size; packs nobody indexed are named
    /// (left by a backup that was killed: prune removes them).
    static func packs(_ repository: ChunkRepository, index: ChunkIndex) throws -> [VerifyFinding] {
        var findings: [VerifyFinding] = []
        let present = Dictionary(try repository.store.list(prefix: "packs/").map { ($0.key, $0.size) }, uniquingKeysWith: { a, _ in a })
        var indexed = Set<String>()
        for pack in index.packs {
            indexed.insert(pack.objectKey)
            switch present[pack.objectKey] {
            case nil: findings.append(.failed("pack", pack.objectKey, "missing: the index lists \(pack.size) bytes of chunks in it"))
            case let size? where size != pack.size:
                findings.append(.failed("pack", pack.objectKey, "is \(size) bytes, the index says \(pack.size): truncated or overwritten"))
            default: break
            }
        }
        let unindexed = present.keys.filter { !indexed.contains($0) }.sorted()
        findings.append(.ok("pack", "packs/", "\(index.packs.count) packs present at their sizes" + (unindexed.isEmpty ? "" : "; \(unindexed.count) not indexed (left by an interrupted backup; prune removes them)")))
        return findings
    }

    /// Each backup's catalog opens and its chunks are indexed; with the
    /// identity, its manifest is authenticated and agrees with the index.
    static func backups(_ repository: ChunkRepository, index: ChunkIndex) throws -> [VerifyFinding] {
        var findings: [VerifyFinding] = []
        let catalogs: [(catalog: SnapshotCatalog, complete: Bool)]
        do { catalogs = try Snapshots.catalogs(repository) } catch {
            return [.failed("backup", "snapshots/", "\(error)")]
        }
        for (catalog, complete) in catalogs where complete {
            let missing = catalog.chunks.filter { ChunkID(hex: $0).flatMap { index[$0] } == nil }
            if !missing.isEmpty {
                findings.append(.failed("backup", catalog.name, "\(missing.count) of its \(catalog.chunks.count) chunks are not in the index", samples: Array(missing.prefix(5))))
                continue
            }
            guard repository.canReadData else {
                findings.append(.ok("backup", catalog.name, "\(catalog.chunks.count) chunks indexed (its manifest is encrypted: --identity checks it too)"))
                continue
            }
            do {
                let manifest = try Snapshots.manifest(catalog.name, in: repository)
                let packs = manifest.packs ?? []
                var wrong: [String] = []
                for list in Snapshots.chunkLists(manifest) {
                    for ref in list {
                        guard let id = ChunkID(hex: ref.id), ref.pack >= 0, ref.pack < packs.count,
                              index.holds(id, pack: packs[ref.pack].id, offset: ref.offset, length: ref.length) else {
                            wrong.append(ref.id)
                            continue
                        }
                    }
                }
                findings.append(wrong.isEmpty
                    ? .ok("backup", catalog.name, "manifest authenticated; \(catalog.chunks.count) chunks where the index says")
                    : .failed("backup", catalog.name, "\(wrong.count) chunks of its manifest are not where the index says", samples: Array(wrong.prefix(5))))
            } catch {
                findings.append(.failed("backup", catalog.name, "\(error)"))
            }
        }
        let incomplete = catalogs.filter { !$0.complete }.map(\.catalog.name)
        if !incomplete.isEmpty {
            findings.append(.ok("backup", "snapshots/", "\(incomplete.count) unfinished backups (no manifest): never restored; prune removes them"))
        }
        return findings
    }

    /// Reads one pack front to back, decrypting as it streams, and checks each
    /// chunk (decompressed, hashed to its id) as soon as its bytes are in.
    /// Memory: one chunk's frame and the decrypted bytes before it.
    static func readPack(_ repository: ChunkRepository, pack: Manifest.PackRef, chunks: [(ChunkID, ChunkIndex.Location)]) -> VerifyFinding {
        do {
            let decryptor = repository.config.encrypted ? try AgeDecryptor(identities: repository.identities) : nil
            var buffer: [UInt8] = []
            var bufferStart: Int64 = 0
            var next = 0
            func drain() throws {
                while next < chunks.count {
                    let (id, at) = chunks[next]
                    let start = Int(at.offset - bufferStart), end = start + Int(at.length)
                    guard start >= 0 else { throw PGVaultError.archive("chunk \(id) overlaps the one before it") }
                    guard end <= buffer.count else { break }
                    try checkChunk(buffer[start..<end], id: id, rawLength: Int(at.rawLength), key: repository.key)
                    buffer.removeFirst(end)
                    bufferStart += Int64(end)
                    next += 1
                }
            }
            try repository.store.get(pack.objectKey) { bytes in
                if let decryptor {
                    buffer += try decrypting { () throws(AgeError) in try decryptor.update(bytes) }
                } else {
                    buffer.append(contentsOf: bytes)
                }
                try drain()
            }
            if let decryptor {
                buffer += try decrypting { () throws(AgeError) in try decryptor.finish() }
            }
            try drain()
            guard next == chunks.count else {
                throw PGVaultError.archive("ends before chunk \(chunks[next].0) (truncated)")
            }
            return .ok("data", pack.objectKey, "\(chunks.count) chunks read, each equal to its id")
        } catch {
            return .failed("data", pack.objectKey, "\(error)")
        }
    }

    private static func decrypting(_ body: () throws(AgeError) -> [UInt8]) throws -> [UInt8] {
        do { return try body() } catch { throw PGVaultError.archive("does not decrypt: \(error.detail)") }
    }

    static func checkChunk(_ frame: ArraySlice<UInt8>, id: ChunkID, rawLength: Int, key: RepositoryKey) throws {
        var raw: [UInt8] = []
        raw.reserveCapacity(rawLength)
        do {
            let decompressor = try ZstdDecompressor(maxOutputBytes: UInt64(rawLength) + 1)
            try frame.withUnsafeBytes { try decompressor.decompress($0) { raw.append(contentsOf: $0) } }
            try decompressor.finish()
        } catch let error as ZstdError {
            throw PGVaultError.archive("chunk \(id) is damaged: \(error)")
        }
        guard raw.count == rawLength, try raw.withUnsafeBytes({ try key.chunkID(of: $0) }) == id else {
            throw PGVaultError.archive("chunk \(id) does not match its id: damaged or swapped")
        }
    }
}
