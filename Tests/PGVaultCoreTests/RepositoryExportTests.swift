import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pgvault repo export` (a format-2 backup out as a format-1 archive) and
/// `pgvault repo upgrade` (format-1 archives into a format-2 repository),
/// through the binary, against real servers.
@Suite("repo export and upgrade")
struct RepositoryExportTests {
    /// A new unencrypted format-2 repository and its key file.
    static func initRepository(_ folder: TestScratch.Folder) throws -> (repo: String, key: String) {
        let repo = folder["repo2"], key = folder["repo.key"]
        try Shell.run([try Shell.pgvault(), "repo", "init", "--repo", repo, "--no-encryption", "--key-file", key])
        return (repo, key)
    }

    static func json(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any])
    }

    /// Every file under `path` with its size, for "nothing changed" checks.
    static func files(_ path: String) -> [String: Int] {
        var out: [String: Int] = [:]
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let name = enumerator?.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
            if attributes?[.type] as? FileAttributeType == .typeRegular { out[name] = (attributes?[.size] as? NSNumber)?.intValue }
        }
        return out
    }

    /// The restore fixture's database backed up by the binary into a new repository.
    static func backedUp(_ name: String) async throws -> (RestoreFixtures.Source, String, TestScratch.Folder, String, String) {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let pgvault = try Shell.pgvault()
        let folder = try TestScratch.Folder(name)
        let (repo, key) = try initRepository(folder)
        try Shell.run([pgvault, "backup", "--dbname", fixture.db.conninfo, "--repo", repo, "--key-file", key, "--quiet"])
        return (fixture, pgvault, folder, repo, key)
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test("repo export writes a format-1 archive (tar or folder) that verify passes and restores to the source's tables", arguments: [true, false])
    func exportRestores(tar: Bool) async throws {
        let (fixture, pgvault, folder, repo, key) = try await Self.backedUp("repo-export")
        defer { folder.remove() }

        let output = folder[tar ? "exported.tar" : "exported"]
        let result = try Self.json(try Shell.run([pgvault, "repo", "export", "--repo", repo, "--backup", "latest", "--key-file", key, "--output", output, "--json"]))
        #expect(result["status"] as? String == "exported")
        #expect(result["form"] as? String == (tar ? "file" : "directory"))
        #expect(Self.mode(output) == (tar ? 0o600 : 0o700))
        // Only the archive is left: no staging folder, no partial tar.
        #expect(folder.names.filter { $0.hasPrefix(".") }.isEmpty)

        // A format-1 manifest: no chunks, no packs; each member's size and
        // SHA-256 are of its zstd object (verify checks them).
        let manifest = try Archive.manifest(of: try Archive.open(output))
        #expect(manifest.packs == nil)
        #expect(manifest.units.allSatisfy { $0.chunks == nil })
        #expect(manifest.schema?.preData.chunks == nil && manifest.schema?.postData.chunks == nil)
        // The repository backup's manifest, but for the members' storage.
        let opened = try RepositoryBackup.open("latest", in: try ChunkRepository.open(path: repo, credentials: .init(keyFile: key)), command: "test")
        opened.release()
        let stored = opened.manifest
        #expect(manifest.units.map(\.member) == stored.units.map(\.member))
        #expect(manifest.units.map(\.rowDigest) == stored.units.map(\.rowDigest))
        #expect(manifest.units.map(\.rawBytes) == stored.units.map(\.rawBytes))
        #expect(manifest.tables == stored.tables && manifest.startedAt == stored.startedAt && manifest.snapshot == stored.snapshot)
        #expect(Self.files(repo).keys.contains { $0.hasPrefix("packs/") })

        let verified = try Shell.capture([pgvault, "verify", output, "--json"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")

        let (target, targetConn) = try RestoreFixtures.emptyTarget(fixture)
        try Shell.run([pgvault, "restore", output, "--dbname", target.conninfo, "--jobs", "2", "--quiet"])
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), targetConn)

        // An existing output is refused, and left as it was.
        let again = try Shell.capture([pgvault, "repo", "export", "--repo", repo, "--key-file", key, "--output", output])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already exists"))
    }

    @Test("an export that meets a damaged chunk fails, naming it, and leaves nothing at the output")
    func exportOfDamagedChunk() async throws {
        let (_, pgvault, folder, repo, key) = try await Self.backedUp("repo-export-damaged")
        defer { folder.remove() }
        // Flip a byte in the middle of the largest pack.
        let pack = try #require(Self.files(repo).filter { $0.key.hasPrefix("packs/") }.max { $0.value < $1.value })
        let handle = try #require(FileHandle(forUpdatingAtPath: repo + "/" + pack.key))
        try handle.seek(toOffset: UInt64(pack.value / 2))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(pack.value / 2))
        try handle.write(contentsOf: [byte ^ 0xFF])
        try handle.close()

        for name in ["out.tar", "out"] {
            let failed = try Shell.capture([pgvault, "repo", "export", "--repo", repo, "--key-file", key, "--output", folder[name]])
            #expect(failed.status == 2, "\(failed.stderr)")
            #expect(failed.stderr.contains("damaged"), "\(failed.stderr)")
        }
        #expect(folder.names == ["repo.key", "repo2"])
    }

    @Test("repo upgrade imports every format-1 backup (folder and tar), restorable and checked, and a second run adds nothing")
    func upgradeImports() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let pgvault = try Shell.pgvault()
        let folder = try TestScratch.Folder("repo-upgrade")
        defer { folder.remove() }
        let old = folder["old"]
        try Shell.run([pgvault, "backup", "--dbname", fixture.db.conninfo, "--repo", old, "--quiet"])
        try Shell.run([pgvault, "backup", "--dbname", fixture.db.conninfo, "--repo", old, "--format", "file", "--quiet"])
        let oldNames = try Self.json(try Shell.run([pgvault, "list", "--repo", old, "--json"]))["backups"] as? [[String: Any]] ?? []
        #expect(oldNames.count == 2)
        let oldFiles = Self.files(old)

        let (repo, key) = try Self.initRepository(folder)
        let first = try Self.json(try Shell.run([pgvault, "repo", "upgrade", "--from", old, "--repo", repo, "--key-file", key, "--json"]))
        let imported = try #require(first["backups"] as? [[String: Any]])
        #expect(imported.count == 2)
        #expect(imported.allSatisfy { $0["status"] as? String == "imported" })
        let names = Set(imported.compactMap { $0["name"] as? String })
        #expect(names == Set(oldNames.compactMap { ($0["name"] as? String).map { $0.hasSuffix(".tar") ? String($0.dropLast(4)) : $0 } }))
        // The old archives are untouched.
        #expect(Self.files(old) == oldFiles)

        let listed = try #require(try Self.json(try Shell.run([pgvault, "list", "--repo", repo, "--key-file", key, "--json"]))["backups"] as? [[String: Any]])
        #expect(Set(listed.compactMap { $0["name"] as? String }) == names)
        #expect(listed.allSatisfy { $0["status"] as? String == "complete" })
        // Times are kept: the old manifest's startedAt.
        #expect(Set(listed.compactMap { $0["startedAt"] as? String }) == Set(oldNames.compactMap { $0["startedAt"] as? String }))

        let checked = try Shell.capture([pgvault, "check", "--repo", repo, "--key-file", key, "--read-data", "--json"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        for name in names.sorted() {
            let (target, targetConn) = try RestoreFixtures.emptyTarget(fixture)
            try Shell.run([pgvault, "restore", "--repo", repo, "--backup", name, "--key-file", key, "--dbname", target.conninfo, "--jobs", "2", "--quiet"])
            try RestoreFixtures.expectSameTables(try fixture.db.connect(), targetConn)
        }

        // Idempotent: the second run skips both and writes nothing.
        let before = Self.files(repo)
        let second = try Self.json(try Shell.run([pgvault, "repo", "upgrade", "--from", old, "--repo", repo, "--key-file", key, "--json"]))
        let skipped = try #require(second["backups"] as? [[String: Any]])
        #expect(skipped.count == 2 && skipped.allSatisfy { $0["status"] as? String == "skipped" })
        #expect(Self.files(repo) == before)

        // An import interrupted after its catalog (no manifest yet) is done
        // again by the next run, not skipped and not refused.
        let interrupted = try #require(names.sorted().first)
        try FileManager.default.removeItem(atPath: repo + "/snapshots/\(interrupted)/manifest")
        let third = try Self.json(try Shell.run([pgvault, "repo", "upgrade", "--from", old, "--repo", repo, "--key-file", key, "--json"]))
        let redone = try #require(third["backups"] as? [[String: Any]])
        #expect(redone.first { $0["name"] as? String == interrupted }?["status"] as? String == "imported")
        let relisted = try #require(try Self.json(try Shell.run([pgvault, "list", "--repo", repo, "--key-file", key, "--json"]))["backups"] as? [[String: Any]])
        #expect(relisted.count == 2 && relisted.allSatisfy { $0["status"] as? String == "complete" })
    }

    @Test("a repository backup exported and upgraded back restores the same tables")
    func exportThenUpgrade() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let pgvault = try Shell.pgvault()
        let folder = try TestScratch.Folder("repo-roundtrip")
        defer { folder.remove() }
        // The fixture's archive is format 1: upgrade it, export it again,
        // and the export restores as the original does.
        let old = folder["old"]
        try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: fixture.archive, toPath: old + "/chat-20260101T000000.000Z")
        let (repo, key) = try Self.initRepository(folder)
        try Shell.run([pgvault, "repo", "upgrade", "--from", old, "--repo", repo, "--key-file", key])
        let output = folder["back.tar"]
        try Shell.run([pgvault, "repo", "export", "--repo", repo, "--backup", "chat-20260101T000000.000Z", "--key-file", key, "--output", output])
        let exported = try Archive.manifest(of: try Archive.open(output))
        // The same backup: everything but the members' stored sizes and digests.
        #expect(exported.units.map(\.rowDigest) == fixture.manifest.units.map(\.rowDigest))
        #expect(exported.units.map(\.rawBytes) == fixture.manifest.units.map(\.rawBytes))
        #expect(exported.startedAt == fixture.manifest.startedAt && exported.tables == fixture.manifest.tables)
        let verified = try Shell.capture([pgvault, "verify", output])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
    }
}
