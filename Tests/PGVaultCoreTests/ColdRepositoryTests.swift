import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// archive-partitions / restore-partitions / list --cold with a format-2
/// repository (docs/cold-storage.md, "In a format-2 repository"): the cold
/// archives are chunks in the repository's packs, deduplicated against the
/// backups, and prune keeps them.
@Suite("cold storage in a format-2 repository", .serialized)
struct ColdRepositoryTests {
    typealias Keys = RepositoryFormatTests.Keys

    static func options(_ db: TestDatabase, repo: String, keys: Keys) -> ColdArchiveOptions {
        var o = ColdStorageTests.options(db, repo: repo, before: "2024-02-01")
        o.keyFile = keys.keyFile
        return o
    }

    static func restoreOptions(_ db: TestDatabase, repo: String, keys: Keys, identity: String?) -> ColdRestoreOptions {
        var o = ColdRestoreOptions(conninfo: db.conninfo, repo: repo, tables: ["messages"], since: "2024-01", until: "2024-01")
        o.keyFile = keys.keyFile
        o.identityFile = identity
        return o
    }

    static func coldCatalogs(_ repo: String, _ keys: Keys) throws -> [ColdRepository.Stored] {
        try ColdRepository.catalogs(try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile)))
    }

    @Test("archive a month into an encrypted repository a backup already holds: almost no new chunks; listed without the identity; a wrong identity is a clear error; restored, the tables are equal", arguments: TestServers.versions)
    func roundTrip(major: Int) async throws {
        let db = try ColdStorageTests.generated(major)
        let conn = try db.connect()
        let keys = try RepositoryFormatTests.keys("cold\(major)")
        let repo = try RepositoryFormatTests.encryptedRepository("cold\(major)", keys)
        _ = try RepositoryFormatTests.backup(db, repo, keys)
        let backupChunks = Set(try RepositoryFormatTests.newestCatalog(repo, keys).chunks)
        let before = try ColdStorageTests.state(conn)
        let rows = try ColdStorageTests.count(conn, "SELECT count(*) FROM messages_2024_01")

        let summary = try await PartitionArchiver.run(Self.options(db, repo: repo, keys: keys))
        #expect(summary.partitions.map(\.partition) == ["public.messages_2024_01"])
        #expect(summary.partitions.first?.archive == repo + "/cold/public.messages/messages_2024_01")
        #expect(try ColdStorageTests.count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'messages_2024_01'") == 0)
        // No folder archive: objects in the repository.
        #expect(try RepositoryFormatTests.objects(repo, under: "cold/") == ["cold/public.messages/messages_2024_01/catalog", "cold/public.messages/messages_2024_01/manifest"])

        // The partition's chunks are the backup's: only the referencing rows (a query of their own) are new.
        let stored = try #require(try Self.coldCatalogs(repo, keys).first)
        #expect(stored.status == "cold" && stored.catalog.rows == rows)
        let repository = try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile, identityFile: keys.identity))
        let manifest = try ColdRepository.open(stored.folder, in: repository, lock: try RepositoryLock.acquire(store: repository.store, kind: .shared, command: "test")).manifest
        let info = try #require(ColdArchiveInfo(manifest: manifest))
        let partitionChunks = Set((info.partitionUnit.chunks ?? []).map(\.id))
        #expect(!partitionChunks.isEmpty)
        #expect(partitionChunks.subtracting(backupChunks).count <= 1, "\(partitionChunks.count) chunks, new: \(partitionChunks.subtracting(backupChunks).count)")
        let referencingChunks = Set(info.referencingUnits.flatMap { ($0.chunks ?? []).map(\.id) })
        #expect(stored.catalog.newChunks <= referencingChunks.count + 1, "new \(stored.catalog.newChunks), reused \(stored.catalog.reusedChunks)")
        #expect(stored.catalog.reusedChunks >= partitionChunks.count - 1)

        // list --cold with the key file only.
        let listed = try RepositoryFormatTests.pgvault(["list", "--repo", repo, "--cold", "--key-file", keys.keyFile, "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])
        let items = try #require(json["cold"] as? [[String: Any]])
        #expect(items.count == 1)
        #expect(items.first?["partition"] as? String == "public.messages_2024_01")
        #expect(items.first?["status"] as? String == "cold")
        #expect((items.first?["rows"] as? NSNumber)?.int64Value == rows)
        #expect(items.first?["from"] as? String == "2024-01-01 00:00:00+00")

        // Without the identity, or with another one: refused, nothing changed.
        let other = try RepositoryFormatTests.keys("cold-other\(major)")
        await #expect { _ = try await PartitionRestorer.run(Self.restoreOptions(db, repo: repo, keys: keys, identity: nil)) } throws: {
            "\($0)".contains("give --identity FILE")
        }
        await #expect { _ = try await PartitionRestorer.run(Self.restoreOptions(db, repo: repo, keys: keys, identity: other.identity)) } throws: {
            "\($0)".contains("cannot decrypt") && "\($0)".contains("not one of the repository's recipients")
        }
        let wrong = try RepositoryFormatTests.pgvault(["restore-partitions", "-d", db.conninfo, "--repo", repo, "--table", "messages", "--since", "2024-01", "--until", "2024-01", "--identity", other.identity, "--key-file", keys.keyFile])
        #expect(wrong.status == 2 && wrong.stderr.contains("not one of the repository's recipients"), "\(wrong.stderr)")
        #expect(try ColdStorageTests.count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'messages_2024_01'") == 0)

        // With the identity: back, equal table by table; the archive moved to restored/.
        let restored = try await PartitionRestorer.run(Self.restoreOptions(db, repo: repo, keys: keys, identity: keys.identity))
        #expect(restored.partitions.map(\.partition) == ["public.messages_2024_01"])
        let back = try ColdStorageTests.state(conn)
        #expect(back == before)
        for key in before.keys.sorted() where back[key] != before[key] {
            Issue.record("\(key): before \(before[key] ?? "-"), after restore \(back[key] ?? "-")")
        }
        let after = try Self.coldCatalogs(repo, keys)
        #expect(after.map(\.status) == ["restored"])
        #expect(after.first?.folder.hasPrefix("cold/public.messages/restored/messages_2024_01.") == true)
        #expect(try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile)).coldEntries().isEmpty)
    }

    @Test("prune keeps the packs only a cold archive refers to: restore-partitions and check --read-data pass after prune --keep-daily 0", arguments: TestServers.versions)
    func pruneKeepsColdData(major: Int) async throws {
        let db = try ColdStorageTests.generated(major)
        let conn = try db.connect()
        let keys = try RepositoryFormatTests.keys("coldprune\(major)")
        let repo = try RepositoryFormatTests.encryptedRepository("coldprune\(major)", keys)
        let before = try ColdStorageTests.state(conn)

        // Archived first: its packs are its own. The backup after it holds no row of the month.
        _ = try await PartitionArchiver.run(Self.options(db, repo: repo, keys: keys))
        let cold = try #require(try Self.coldCatalogs(repo, keys).first?.catalog)
        #expect(cold.newChunks > 0 && !cold.packs.isEmpty)
        _ = try RepositoryFormatTests.backup(db, repo, keys)
        let backup = try RepositoryFormatTests.newestCatalog(repo, keys)
        #expect(Set(cold.packs).isDisjoint(with: backup.packs))

        let pruned = try RepositoryFormatTests.pgvault(["prune", "--repo", repo, "--key-file", keys.keyFile, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0"])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        for pack in cold.packs {
            #expect(try LocalFolderStore(root: repo).head("packs/\(pack.prefix(2))/\(pack)") != nil, "pack \(pack) of the cold archive was pruned")
        }
        let checked = try RepositoryFormatTests.pgvault(["check", "--repo", repo, "--identity", keys.identity, "--read-data"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        let restored = try RepositoryFormatTests.pgvault(["restore-partitions", "-d", db.conninfo, "--repo", repo, "--table", "messages", "--since", "2024-01", "--until", "2024-01", "--identity", keys.identity, "--key-file", keys.keyFile])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try ColdStorageTests.state(conn) == before)
    }

    @Test("prune --identity repacks a pack a cold archive shares with a pruned backup: the cold manifest and catalog point at the copy; check --read-data and restore-partitions pass")
    func repackRewritesColdArchive() async throws {
        let db = try ColdStorageTests.generated(TestServers.newest)
        let conn = try db.connect()
        let keys = try RepositoryFormatTests.keys("coldrepack")
        let repo = try RepositoryFormatTests.encryptedRepository("coldrepack", keys)
        let month = try ColdStorageTests.state(conn).filter { $0.key == "public.messages_2024_01" }
        // The cold archive's chunks are the first backup's; then every other
        // message changes, and the second backup no longer uses most of them.
        _ = try RepositoryFormatTests.backup(db, repo, keys)
        _ = try await PartitionArchiver.run(Self.options(db, repo: repo, keys: keys))
        let coldBefore = try #require(try Self.coldCatalogs(repo, keys).first?.catalog)
        try conn.execute("UPDATE messages SET content = content || ' (edited)'")
        _ = try RepositoryFormatTests.backup(db, repo, keys)

        let pruned = try RepositoryFormatTests.pgvault([
            "prune", "--repo", repo, "--key-file", keys.keyFile, "--identity", keys.identity, "--keep-daily", "0", "--keep-weekly", "0",
            "--keep-monthly", "0", "--repack-threshold", "20", "--json",
        ])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any])
        let repack = try #require(json["repack"] as? [String: Any], "\(json)")
        #expect((repack["packsRepacked"] as? Int ?? 0) >= 1 && (repack["manifestsRewritten"] as? Int ?? 0) >= 1, "\(repack)")
        let coldAfter = try #require(try Self.coldCatalogs(repo, keys).first?.catalog)
        #expect(coldAfter.chunks == coldBefore.chunks && coldAfter.packs != coldBefore.packs, "\(coldBefore.packs) → \(coldAfter.packs)")

        let checked = try RepositoryFormatTests.pgvault(["check", "--repo", repo, "--identity", keys.identity, "--read-data"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        let restored = try RepositoryFormatTests.pgvault([
            "restore-partitions", "-d", db.conninfo, "--repo", repo, "--table", "messages", "--since", "2024-01", "--until", "2024-01",
            "--identity", keys.identity, "--key-file", keys.keyFile,
        ])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try ColdStorageTests.state(conn).filter { $0.key == "public.messages_2024_01" } == month)
        #expect(month.count == 1)
    }

    @Test("a failure after the dump, before the detach or before the commit leaves the partition attached and no cold archive (no manifest, no catalog)")
    func failureInjection() async throws {
        let db = try ColdStorageTests.generated(17)
        let conn = try db.connect()
        let keys = try RepositoryFormatTests.keys("coldfault")
        let repo = try RepositoryFormatTests.encryptedRepository("coldfault", keys)
        let before = try ColdStorageTests.state(conn)
        for point in ["after-dump", "before-detach", "before-commit"] {
            var options = Self.options(db, repo: repo, keys: keys)
            options.faultInjection = { if $0 == point { throw ColdStorageTests.Injected() } }
            await #expect(throws: ColdStorageTests.Injected.self, "fault at \(point)") { _ = try await PartitionArchiver.run(options) }
            #expect(try ColdStorageTests.state(conn) == before, "after a fault at \(point)")
            #expect(try RepositoryFormatTests.objects(repo, under: "cold/").isEmpty, "after a fault at \(point)")
            #expect(try RepositoryFormatTests.objects(repo, under: "locks/").isEmpty, "after a fault at \(point)")
        }
        // Without the fault the same run succeeds, and a dry run names the archive in the repository.
        var dry = Self.options(db, repo: repo, keys: keys)
        dry.dryRun = true
        #expect(try await PartitionArchiver.run(dry).partitions.map(\.archive) == [repo + "/cold/public.messages/messages_2024_01"])
        let summary = try await PartitionArchiver.run(Self.options(db, repo: repo, keys: keys))
        #expect(summary.partitions.map(\.partition) == ["public.messages_2024_01"])
        #expect(try Self.coldCatalogs(repo, keys).map(\.status) == ["cold"])
    }
}
