import Foundation
@testable import PGVaultCore
import Testing
import TestSupport

/// A format-2 repository kept in S3 (moto), reached through `--repo`'s text.
@Suite("repository: s3:// locations")
struct S3RepositoryTests {
    @Test("--repo text: s3:// URLs and folders; bad bucket names are usage errors")
    func locations() throws {
        #expect(RepositoryLocation("s3://bkt/backups/nightly") == .s3("s3://bkt/backups/nightly"))
        #expect(RepositoryLocation("/srv/repo") == .folder("/srv/repo"))
        #expect(try S3ObjectStore.parse("s3://bkt/backups/nightly") == ("bkt", "backups/nightly/"))
        #expect(try S3ObjectStore.parse("s3://bkt") == ("bkt", ""))
        for bad in ["s3://B", "s3://Upper-Case/x", "s3://-dash/x", "s3://ok-bucket/../x"] {
            let error = try #require(throws: PGVaultError.self) { _ = try S3ObjectStore.parse(bad) }
            #expect(error.kind == .usage)
        }
    }

    @Test("repo init and open through an s3:// location, configured from the environment")
    func createAndOpen() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket()
        let keys = try TestScratch.Folder("s3-repo-keys")
        defer { keys.remove() }
        let location = RepositoryLocation("s3://\(bucket)/repos/one")
        var environment = server.environment
        environment["HOME"] = keys.path
        let store = try location.store(environment: environment)
        #expect(store.location == "s3://\(bucket)/repos/one")
        let (created, keyFile) = try ChunkRepository.create(store: store, recipients: [], encrypted: false, keyFile: keys["repo.key"])
        let opened = try ChunkRepository.open(store: try location.store(environment: environment), credentials: .init(keyFile: keyFile))
        #expect(opened.config.id == created.config.id)
        #expect(try opened.entries().isEmpty)
        // A second init into the same prefix is refused: it is not empty.
        let again = try #require(throws: PGVaultError.self) {
            _ = try ChunkRepository.create(store: store, recipients: [], encrypted: false, keyFile: keys["other.key"])
        }
        #expect(again.description.contains("not empty"))
    }

    /// pgvault run with the server's environment (credentials, endpoint,
    /// region), as a cron job configured the AWS way would be.
    static func pgvault(_ server: TestS3Server, _ arguments: [String]) throws -> Shell.Output {
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in server.environment { environment[k] = v }
        return try Shell.capture([try Shell.pgvault()] + arguments, environment: environment)
    }

    @Test("PostgreSQL → an encrypted repository in S3 → a fresh database: repo init, backup twice (the second adds nothing), list, check --read-data, restore with table digests equal, verify, a drill, prune", arguments: TestServers.versions)
    func roundTrip(major: Int) async throws {
        let server = try TestS3Server.shared()
        let repo = "s3://\(try server.makeBucket("rt"))/nightly/chat"
        let db = try await BackupTests.chatDatabase(major)
        let keys = try RepositoryFormatTests.keys("s3rt\(major)")
        let made = try Self.pgvault(server, ["repo", "init", "--repo", repo, "--encrypt-to", keys.recipient, "--key-file", keys.keyFile])
        try #require(made.status == 0, "\(made.stderr)")
        for _ in 1...2 {
            let backup = try Self.pgvault(server, ["backup", "-d", db.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--jobs", "2", "--quiet", "--json"])
            try #require(backup.status == 0, "\(backup.stderr)")
            #expect(backup.stdout.contains("\"archive\":\"\(repo)/"), "\(backup.stdout)")
        }
        // --s3-endpoint instead of the environment's endpoint.
        var withoutEndpoint = ProcessInfo.processInfo.environment
        for (k, v) in server.environment where k != "AWS_ENDPOINT_URL_S3" { withoutEndpoint[k] = v }
        let listed = try Shell.capture(
            [try Shell.pgvault(), "list", "--repo", repo, "--key-file", keys.keyFile, "--json", "--s3-endpoint", server.endpoint], environment: withoutEndpoint)
        let backups = try #require((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])?["backups"] as? [[String: Any]])
        #expect(backups.count == 2 && backups.contains { $0["addedBytes"] as? Int == 0 }, "\(backups)")

        let checked = try Self.pgvault(server, ["check", "--repo", repo, "--read-data", "--identity", keys.identity])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        let target = try db.sibling(prefix: "froms3")
        let restored = try Self.pgvault(server, ["restore", "--repo", repo, "--backup", "latest", "--identity", keys.identity, "-d", target.conninfo, "--jobs", "2", "--quiet"])
        #expect(restored.status == 0, "\(restored.stderr)")
        try RestoreFixtures.expectSameTables(try db.connect(), try target.connect())
        let verified = try Self.pgvault(server, ["verify", "--repo", repo, "--identity", keys.identity, "-d", target.conninfo])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        // A restore drill reads the same repository in S3, on a scratch cluster of the backup's major.
        let drilled = try Self.pgvault(server, ["drill", "--repo", repo, "--identity", keys.identity, "--scratch-cluster", "--json"])
        #expect(drilled.status == 0 && drilled.stdout.contains("\"status\":\"passed\""), "\(drilled.stdout)\(drilled.stderr)")
        let pruned = try Self.pgvault(server, ["prune", "--repo", repo, "--key-file", keys.keyFile, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0"])
        #expect(pruned.status == 0 && pruned.stdout.contains("deleted"), "\(pruned.stdout)\(pruned.stderr)")

        // The secret never shows in what pgvault printed.
        for output in [made, listed, checked, restored, verified, drilled, pruned] {
            let secret = try #require(server.environment["AWS_SECRET_ACCESS_KEY"])
            #expect(!output.stdout.contains(secret) && !output.stderr.contains(secret))
        }
    }

    @Test("a wrong secret: backup fails at once with the service's refusal and what to check, and never prints the secret")
    func wrongSecret() async throws {
        let server = try TestS3Server.shared()
        let repo = "s3://\(try server.makeBucket("ws"))/r"
        let db = try TestServers.database(prefix: "s3ws")
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in server.environment { environment[k] = v }
        environment["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-0123456789abcdef"
        let started = Date()
        let out = try Shell.capture([try Shell.pgvault(), "backup", "-d", db.conninfo, "--repo", repo], environment: environment)
        #expect(out.status == 2, "\(out.stderr)")
        // A HEAD has no body, so no error code: the status, the key id and its source, and what to check.
        #expect(out.stderr.contains("403") && out.stderr.contains("AWS_ACCESS_KEY_ID") && out.stderr.contains("check"), "\(out.stderr)")
        #expect(!out.stderr.contains("wrong-secret-0123456789abcdef"))
        #expect(Date().timeIntervalSince(started) < 20, "a permanent refusal is not retried")
    }
}
