import AgeFormat
import Foundation
import PGClient
@testable import PGVaultCore
import Testing
import TestSupport

/// The format-2 repository through the real binary, on real servers: round
/// trips, deduplication counted in chunks, the `age` command both ways,
/// tampering and planted objects, identities, and what a killed or starved
/// backup leaves.
@Suite("repository format 2")
struct RepositoryFormatTests {
    // MARK: - Fixtures

    struct Keys {
        var identity: String
        var recipient: String
        var keyFile: String
    }

    /// An identity made by the `age-keygen` command (so pgvault reads the
    /// reference tool's files), and where the repository key goes.
    static func keys(_ name: String) throws -> Keys {
        let dir = try TestScratch.directory("keys-\(name)")
        let identity = dir + "/identity.txt"
        let made = try Shell.capture(["/usr/bin/age-keygen", "-o", identity])
        try #require(made.status == 0, "\(made.stderr)")
        let recipient = try #require(made.stderr.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        return Keys(identity: identity, recipient: recipient, keyFile: dir + "/repo.key")
    }

    static func pgvault(_ arguments: [String]) throws -> Shell.Output {
        try Shell.capture([try Shell.pgvault()] + arguments)
    }

    /// `repo init` of an encrypted repository; returns its folder.
    static func encryptedRepository(_ name: String, _ keys: Keys) throws -> String {
        let repo = try TestScratch.path("repo2-\(name)")
        let out = try pgvault(["repo", "init", "--repo", repo, "--encrypt-to", keys.recipient, "--key-file", keys.keyFile])
        try #require(out.status == 0, "\(out.stderr)")
        return repo
    }

    static func backup(_ db: TestDatabase, _ repo: String, _ keys: Keys, _ extra: [String] = []) throws -> [String: Any] {
        let out = try pgvault(["backup", "-d", db.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--quiet", "--json"] + extra)
        try #require(out.status == 0, "\(out.stderr)")
        return try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    /// The newest backup's catalog, read with the key as `list` does.
    static func newestCatalog(_ repo: String, _ keys: Keys) throws -> SnapshotCatalog {
        let repository = try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile))
        return try #require(try Snapshots.catalogs(repository).first?.catalog)
    }

    static func objects(_ repo: String, under prefix: String) throws -> [String] {
        try LocalFolderStore(root: repo).list(prefix: prefix).map(\.key)
    }

    // MARK: - Round trip

    @Test("backup into an encrypted repository, restore with the identity: table digests equal; verify and check --read-data pass", arguments: TestServers.versions)
    func roundTrip(major: Int) async throws {
        let db = try await BackupTests.chatDatabase(major)
        let keys = try Self.keys("rt\(major)")
        let repo = try Self.encryptedRepository("rt\(major)", keys)
        _ = try Self.backup(db, repo, keys, ["--split-size", "1"])

        let target = try db.sibling(prefix: "r2")
        let restored = try Self.pgvault(["restore", "--repo", repo, "--backup", "latest", "--identity", keys.identity, "-d", target.conninfo, "--quiet", "--json"])
        #expect(restored.status == 0, "\(restored.stderr)")
        try RestoreFixtures.expectSameTables(try db.connect(), try target.connect())

        let verified = try Self.pgvault(["verify", "--repo", repo, "--identity", keys.identity, "-d", target.conninfo, "--json"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let offline = try Self.pgvault(["verify", "--repo", repo, "--identity", keys.identity, "--json"])
        #expect(offline.status == 0, "\(offline.stdout)\(offline.stderr)")
        let checked = try Self.pgvault(["check", "--repo", repo, "--read-data", "--identity", keys.identity, "--json"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        // Every object is owner-only, and so are the folders.
        for object in try Self.objects(repo, under: "") {
            #expect(Fault.mode(repo + "/" + object) == 0o600, "\(object)")
        }
        #expect(Fault.mode(repo) == 0o700 && Fault.mode(repo + "/packs") == 0o700)
        #expect(Fault.mode(keys.keyFile) == 0o600)
    }

    // MARK: - Deduplication, counted

    @Test("an unchanged second backup stores no chunk; one changed row and a few new messages store only a few", arguments: TestServers.versions)
    func deduplication(major: Int) async throws {
        let db = try await BackupTests.chatDatabase(major)
        let keys = try Self.keys("dedup\(major)")
        let repo = try Self.encryptedRepository("dedup\(major)", keys)
        _ = try Self.backup(db, repo, keys)
        let first = try Self.newestCatalog(repo, keys)
        #expect(first.newChunks > 20 && first.reusedChunks < first.newChunks, "\(first)")

        _ = try Self.backup(db, repo, keys)
        let second = try Self.newestCatalog(repo, keys)
        #expect(second.newChunks == 0 && second.addedBytes == 0, "unchanged database: \(second.newChunks) new chunks, \(second.addedBytes) bytes")
        #expect(second.chunks == first.chunks)
        #expect(try Self.objects(repo, under: "packs/").count == first.packs.count)

        let conn = try db.connect()
        let newest = try #require(try conn.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'public.messages'::regclass AND c.relname <> 'messages_default'
            ORDER BY c.relname DESC LIMIT 1
            """).scalar)
        try conn.execute("""
            UPDATE \(SQL.ident(newest)) SET content = content || ' (edited)' WHERE id = (SELECT min(id) FROM \(SQL.ident(newest)));
            INSERT INTO messages (id, channel_id, author_id, content, created_at)
            SELECT 9100000000000000000 + g, m.channel_id, m.author_id, 'new ' || g, m.created_at
            FROM (SELECT * FROM \(SQL.ident(newest)) ORDER BY id DESC LIMIT 1) m, generate_series(1, 5) g;
            """)
        _ = try Self.backup(db, repo, keys)
        let third = try Self.newestCatalog(repo, keys)
        #expect(third.newChunks >= 1 && third.newChunks <= 4, "one changed partition: \(third.newChunks) new chunks")
        #expect(third.addedBytes < first.addedBytes / 10, "\(third.addedBytes) of \(first.addedBytes)")

        // list shows what each added, without the identity.
        let listed = try Self.pgvault(["list", "--repo", repo, "--key-file", keys.keyFile, "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let backups = try #require((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])?["backups"] as? [[String: Any]])
        #expect(backups.count == 3 && backups.allSatisfy { ($0["logicalBytes"] as? Int ?? 0) > 0 && $0["addedBytes"] != nil }, "\(backups)")
    }

    // MARK: - The age command

    @Test("the age command decrypts the key, a manifest and a pack with the identity; pgvault reads age-keygen's identity file", arguments: TestServers.versions)
    func ageInterop(major: Int) async throws {
        let db = try TestServers.database(major)
        try db.connect().execute("CREATE TABLE t AS SELECT g, md5(g::text) AS m FROM generate_series(1, 5000) g")
        let keys = try Self.keys("interop\(major)")
        let repo = try Self.encryptedRepository("interop\(major)", keys)
        _ = try Self.backup(db, repo, keys)

        let secret = try Shell.capture(["/usr/bin/age", "-d", "-i", keys.identity, repo + "/keys/secret.age"])
        let keyText = try String(contentsOfFile: keys.keyFile, encoding: .utf8)
        #expect(secret.status == 0 && secret.stdout == keyText, "\(secret.stderr)")
        let manifestKey = try #require(try Self.objects(repo, under: "snapshots/").first { $0.hasSuffix("/manifest") })
        let manifest = try Shell.capture(["/usr/bin/age", "-d", "-i", keys.identity, repo + "/" + manifestKey])
        #expect(manifest.status == 0 && manifest.stdout.contains("\"format\" : \"pgvault-archive\"") && manifest.stdout.contains("\npgvault-mac: "), "\(manifest.stderr)")
        let pack = try #require(try Self.objects(repo, under: "packs/").first)
        let plain = try TestScratch.path("interop-pack")
        let decrypted = try Shell.capture(["/usr/bin/age", "-d", "-i", keys.identity, "-o", plain, repo + "/" + pack])
        #expect(decrypted.status == 0, "\(decrypted.stderr)")
        // The pack's plaintext is zstd frames one after another: one zstd stream.
        let frames = try Shell.capture(["/usr/bin/zstd", "-d", "-q", plain, "-o", plain + ".raw"])
        #expect(frames.status == 0, "\(frames.stderr)")
        let raw = try Data(contentsOf: URL(fileURLWithPath: plain + ".raw"))
        #expect(raw.range(of: Data("CREATE TABLE public.t".utf8)) != nil)
    }

    // MARK: - Tampering, planted objects, identities

    @Test("a flipped byte in a pack fails the restore naming the chunk's member and pack, and check --read-data names the pack", arguments: TestServers.versions)
    func flippedPackByte(major: Int) async throws {
        let db = try TestServers.database(major)
        try db.connect().execute("CREATE TABLE t AS SELECT g, md5(g::text) AS m FROM generate_series(1, 20000) g")
        let keys = try Self.keys("flip\(major)")
        let repo = try Self.encryptedRepository("flip\(major)", keys)
        _ = try Self.backup(db, repo, keys)
        let pack = try #require(try Self.objects(repo, under: "packs/").first)
        let path = repo + "/" + pack
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 100] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let target = try db.sibling(prefix: "flip")
        let restored = try Self.pgvault(["restore", "--repo", repo, "--identity", keys.identity, "-d", target.conninfo, "--quiet"])
        #expect(restored.status == 2, "\(restored.stderr)")
        #expect(restored.stderr.contains(pack) && restored.stderr.contains("of member "), "\(restored.stderr)")
        let checked = try Self.pgvault(["check", "--repo", repo, "--read-data", "--identity", keys.identity, "--json"])
        #expect(checked.status == 1 && checked.stdout.contains(pack), "\(checked.stdout)\(checked.stderr)")
        // Without --read-data the structure is whole (the size is right).
        #expect(try Self.pgvault(["check", "--repo", repo, "--key-file", keys.keyFile]).status == 0)
    }

    @Test("a manifest planted by someone who knows only the recipient is refused by restore, verify and check, and names the object", arguments: TestServers.versions)
    func plantedManifest(major: Int) async throws {
        let db = try TestServers.database(major)
        try db.connect().execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g")
        let keys = try Self.keys("plant\(major)")
        let repo = try Self.encryptedRepository("plant\(major)", keys)
        _ = try Self.backup(db, repo, keys)
        let name = try Self.newestCatalog(repo, keys).name
        let manifestPath = repo + "/" + Snapshots.manifestKey(name)

        // The attacker's manifest: the real one's JSON with evil SQL would do;
        // any body, re-encrypted to the public recipient with the age command,
        // once with no MAC line and once with a MAC made under another key.
        let real = try Shell.capture(["/usr/bin/age", "-d", "-i", keys.identity, manifestPath])
        try #require(real.status == 0)
        let body = String(real.stdout[..<(try #require(real.stdout.range(of: "pgvault-mac: "))).lowerBound])
        let forgedKey = try RepositoryKey(repositoryID: "x", secret: [UInt8](repeating: 7, count: 32))
        let forged = String(decoding: try Sealing.macTrailed(Array(body.utf8), key: forgedKey, objectKey: Snapshots.manifestKey(name)), as: UTF8.self)
        for plaintext in [body, forged] {
            let plainPath = try TestScratch.path("planted")
            try plaintext.write(toFile: plainPath, atomically: true, encoding: .utf8)
            let sealed = try Shell.capture(["/usr/bin/age", "-r", keys.recipient, "-o", manifestPath + ".new", plainPath])
            try #require(sealed.status == 0, "\(sealed.stderr)")
            _ = try Shell.capture(["/bin/mv", "-f", manifestPath + ".new", manifestPath])

            let target = try db.sibling(prefix: "plant")
            let restored = try Self.pgvault(["restore", "--repo", repo, "--identity", keys.identity, "-d", target.conninfo, "--quiet"])
            #expect(restored.status == 2 && restored.stderr.contains(Snapshots.manifestKey(name)) && restored.stderr.contains("planted"), "\(restored.stderr)")
            #expect(try target.connect().query("SELECT count(*) FROM pg_class WHERE relname = 't'").scalar == "0")
            let verified = try Self.pgvault(["verify", "--repo", repo, "--identity", keys.identity])
            #expect(verified.status == 2, "\(verified.stderr)")
            let checked = try Self.pgvault(["check", "--repo", repo, "--identity", keys.identity, "--json"])
            #expect(checked.status == 1 && checked.stdout.contains(name), "\(checked.stdout)")
        }
    }

    @Test("a wrong identity, or none, is a clear error and the target is left untouched")
    func identities() async throws {
        let db = try TestServers.database()
        try db.connect().execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g")
        let keys = try Self.keys("ident")
        let other = try Self.keys("ident-other")
        let repo = try Self.encryptedRepository("ident", keys)
        _ = try Self.backup(db, repo, keys)
        let target = try db.sibling(prefix: "ident")

        let wrong = try Self.pgvault(["restore", "--repo", repo, "--identity", other.identity, "-d", target.conninfo, "--quiet"])
        #expect(wrong.status == 2 && wrong.stderr.contains(other.identity) && wrong.stderr.contains("not one of the repository's recipients"), "\(wrong.stderr)")
        // Only the key file, no identity: the writer cannot read a backup.
        let none = try Self.pgvault(["restore", "--repo", repo, "--key-file", keys.keyFile, "-d", target.conninfo, "--quiet"])
        #expect(none.status == 64 && none.stderr.contains("--identity"), "\(none.stderr)")
        // A file that is no identity (the key file, here) is named; its text is never shown.
        let notAKey = try Self.pgvault(["restore", "--repo", repo, "--identity", keys.keyFile, "-d", target.conninfo, "--quiet"])
        let secretHex = try #require(try String(contentsOfFile: keys.keyFile, encoding: .utf8).split(separator: "\"").dropLast().last)
        #expect(notAKey.status == 64 && notAKey.stderr.contains(keys.keyFile) && !notAKey.stderr.contains(secretHex), "\(notAKey.stderr)")
        #expect(!notAKey.stderr.hasSuffix("error: \n"), "an empty error line: \(notAKey.stderr)")
        #expect(try target.connect().query("SELECT count(*) FROM pg_class WHERE relname = 't'").scalar == "0")
        // A key file of another repository is named, and nothing is written.
        let otherRepo = try Self.encryptedRepository("ident-other", other)
        let mismatch = try Self.pgvault(["backup", "-d", db.conninfo, "--repo", repo, "--key-file", other.keyFile, "--quiet"])
        #expect(mismatch.status == 2 && mismatch.stderr.contains("not for '\(repo)'"), "\(mismatch.stderr)")
        #expect(try Self.objects(otherRepo, under: "snapshots/").isEmpty)
    }

    @Test("repo init refuses a folder that is not empty, a missing recipient, and a key file it would overwrite")
    func initRefusals() throws {
        let keys = try Self.keys("init")
        let repo = try Self.encryptedRepository("init", keys)
        let again = try Self.pgvault(["repo", "init", "--repo", repo, "--encrypt-to", keys.recipient, "--key-file", keys.keyFile + ".2"])
        #expect(again.status == 64 && again.stderr.contains("not empty"), "\(again.stderr)")
        let none = try Self.pgvault(["repo", "init", "--repo", try TestScratch.path("init-none")])
        #expect(none.status == 64 && none.stderr.contains("--no-encryption"), "\(none.stderr)")
        let overwrite = try Self.pgvault(["repo", "init", "--repo", try TestScratch.path("init-ow"), "--encrypt-to", keys.recipient, "--key-file", keys.keyFile])
        #expect(overwrite.status == 64 && overwrite.stderr.contains("already exists"), "\(overwrite.stderr)")
        #expect(try Self.pgvault(["repo", "init", "--repo", try TestScratch.path("init-bad"), "--encrypt-to", "age1nope"]).status == 64)
    }

    // MARK: - Recoverable without pgvault

    @Test("scripts/recover-without-pgvault.py restores a backup with age, zstd and psql only: table digests equal", arguments: TestServers.versions)
    func recoverWithoutPGVault(major: Int) async throws {
        let db = try await BackupTests.chatDatabase(major)
        let keys = try Self.keys("recover\(major)")
        let repo = try Self.encryptedRepository("recover\(major)", keys)
        _ = try Self.backup(db, repo, keys, ["--split-size", "1"])
        let target = try db.sibling(prefix: "recover")
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = db.server.binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let out = try Shell.capture(
            ["/usr/bin/python3", RepoPaths.root + "/scripts/recover-without-pgvault.py", "--repo", repo, "--identity", keys.identity, "--dbname", target.conninfo],
            environment: env)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        try RestoreFixtures.expectSameTables(try db.connect(), try target.connect())
    }

    // MARK: - Faults

    @Test("SIGKILL mid-backup: check passes, and the next backup reuses the packs that were completely written")
    func sigkill() async throws {
        let fixture = try await Fault.bigDatabase()
        let keys = try Self.keys("kill")
        let repo = try TestScratch.path("repo2-kill")
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        // Small packs, so some are complete long before the backup ends.
        _ = try ChunkRepository.create(
            store: LocalFolderStore(root: repo), recipients: [try AgeRecipient(parsing: keys.recipient)], encrypted: true,
            keyFile: keys.keyFile, packTargetBytes: 1 << 20)
        let process = try Fault.spawn(try Shell.pgvault(), [
            "backup", "-d", fixture.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--table", "public.big",
            "--compress-level", "19", "--quiet",
        ])
        let deadline = Date().addingTimeInterval(120)
        while try Self.objects(repo, under: "index/").count < 3 && process.isRunning && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let complete = try Self.objects(repo, under: "index/").count
        #expect(complete >= 3)
        #expect(try Self.objects(repo, under: "snapshots/").isEmpty)
        let written = try ChunkIndex.load(try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile))).chunks.count

        let checked = try Self.pgvault(["check", "--repo", repo, "--key-file", keys.keyFile, "--json"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: false)
        let again = try Self.pgvault(["backup", "-d", fixture.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--table", "public.big", "--compress-level", "1", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        let catalog = try Self.newestCatalog(repo, keys)
        // Every chunk of the killed run's complete packs is found again.
        #expect(catalog.reusedChunks >= written && written >= 3, "reused \(catalog.reusedChunks) of the \(written) chunks in the killed run's \(complete) packs")
        let read = try Self.pgvault(["check", "--repo", repo, "--read-data", "--identity", keys.identity, "--json"])
        #expect(read.status == 0, "\(read.stdout)\(read.stderr)")
    }

    @Test("backup and prune at once: prune is refused while a backup holds its lock; a backup of another database at the same time succeeds, one of the same database is refused; then a full check passes")
    func concurrentBackupAndPrune() async throws {
        let fixture = try await Fault.bigDatabase()
        let other = try TestServers.database(prefix: "conc")
        try other.connect().execute("CREATE TABLE t AS SELECT g, md5(g::text) AS m FROM generate_series(1, 20000) g")
        let keys = try Self.keys("concurrent")
        let repo = try Self.encryptedRepository("concurrent", keys)
        let binary = try Shell.pgvault()
        let slowErr = try TestScratch.path("concurrent-slow.stderr")
        let slow = try Fault.spawn(binary, [
            "backup", "-d", fixture.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--table", "public.big", "--compress-level", "15", "--quiet",
        ], stderr: slowErr)
        // Once its COPY runs, the backup holds its lock.
        try await Fault.waitForActiveCopy(fixture.conninfo, process: slow)
        let pruned = try Self.pgvault(["prune", "--repo", repo, "--key-file", keys.keyFile, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0"])
        let beside = try Self.pgvault(["backup", "-d", other.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--quiet"])
        let twice = try Self.pgvault(["backup", "-d", fixture.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--table", "public.mid", "--quiet"])
        let stillRunning = slow.isRunning
        slow.waitUntilExit()
        #expect(slow.terminationStatus == 0, "\((try? String(contentsOfFile: slowErr, encoding: .utf8)) ?? "")")
        #expect(beside.status == 0, "another database at the same time: \(beside.stderr)")
        if stillRunning {
            #expect(pruned.status == 2 && pruned.stderr.contains("is locked by backup"), "\(pruned.stderr)")
            #expect(twice.status == 2 && twice.stderr.contains("another pgvault backup of database"), "\(twice.stderr)")
        }
        #expect(try Self.objects(repo, under: "locks/").isEmpty)
        let listed = try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile)).entries()
        #expect(listed.count >= 2 && listed.allSatisfy { $0.status == "complete" }, "\(listed)")
        let checked = try Self.pgvault(["check", "--repo", repo, "--read-data", "--identity", keys.identity, "--json"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        // Now prune runs: it keeps the newest backup, and the packs it uses.
        let after = try Self.pgvault(["prune", "--repo", repo, "--key-file", keys.keyFile, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0", "--json"])
        #expect(after.status == 0, "\(after.stderr)")
        #expect(try ChunkRepository.open(path: repo, credentials: .init(keyFile: keys.keyFile)).entries().count == 1)
        let target = try other.sibling(prefix: "conc")
        let restored = try Self.pgvault(["restore", "--repo", repo, "--identity", keys.identity, "-d", target.conninfo, "--quiet"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try Self.pgvault(["check", "--repo", repo, "--read-data", "--identity", keys.identity]).status == 0)
    }

    @Test("SIGINT mid-backup into a repository: exit 130, no backup, no lock left, check passes")
    func sigint() async throws {
        let fixture = try await Fault.bigDatabase()
        let keys = try Self.keys("sigint")
        let repo = try Self.encryptedRepository("sigint", keys)
        let errPath = try TestScratch.path("repo2-sigint.stderr")
        let process = try Fault.spawn(try Shell.pgvault(), [
            "backup", "-d", fixture.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--table", "public.big", "--compress-level", "19", "--quiet",
        ], stderr: errPath)
        try await Fault.waitForActiveCopy(fixture.conninfo, process: process)
        kill(process.processIdentifier, SIGINT)
        let exited = await Fault.waitExit(process, seconds: 15)
        #expect(exited, "pgvault did not exit within 15 s of SIGINT")
        if !exited { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        #expect(process.terminationStatus == 130, "\((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")")
        #expect(try Self.objects(repo, under: "snapshots/").isEmpty)
        #expect(try Self.objects(repo, under: "locks/").isEmpty)
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: true, seconds: 5)
        let checked = try Self.pgvault(["check", "--repo", repo, "--key-file", keys.keyFile])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
    }

    @Test("a full disk (2 MiB tmpfs): exit 2 naming ENOSPC, no backup listed, check passes")
    func fullDisk() async throws {
        let fixture = try await Fault.bigDatabase()
        let keys = try Self.keys("full")
        let mount = try TestScratch.directory("repo2-tmpfs")
        defer { rmdir(mount) }
        let mounted = try Shell.capture(["/bin/mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mount])
        try #require(mounted.status == 0, "cannot mount a tmpfs here: \(mounted.stderr)")
        defer { _ = try? Shell.capture(["/bin/umount", "-l", mount]) }
        let repo = mount + "/repo"
        let made = try Self.pgvault(["repo", "init", "--repo", repo, "--encrypt-to", keys.recipient, "--key-file", keys.keyFile])
        try #require(made.status == 0, "\(made.stderr)")

        let out = try Self.pgvault(["backup", "-d", fixture.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--table", "public.big", "--compress-level", "1", "--quiet", "--json"])
        #expect(out.status == 2, "\(out.stdout)\(out.stderr)")
        #expect(out.stderr.contains("No space left on device"), "\(out.stderr)")
        #expect(try Self.objects(repo, under: "snapshots/").isEmpty)
        let checked = try Self.pgvault(["check", "--repo", repo, "--key-file", keys.keyFile])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
    }
}

