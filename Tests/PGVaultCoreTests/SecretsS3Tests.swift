import Foundation
import PGClient
@testable import PGVaultCore
import S3Client
import TestSupport
import Testing

/// S3 credentials — `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and the
/// secret of a `~/.aws/credentials` profile — never appear in standard output
/// or error, JSON, the metrics file, the objects pgvault writes (manifests),
/// error messages, export request rows or the process titles of backup,
/// export-worker and failing commands.
extension SecretsTests {
    static let wrongSecret = "Wrong-S3-secret-9qZ7-leak-canary"
    static let sessionToken = "Session-token-4kP2-leak-canary"

    @Test("S3 secrets from the environment and from a profile: nowhere in outputs, objects, metrics, errors, request rows or process titles")
    func s3SecretsNeverLeak() async throws {
        let server = try TestS3Server.shared()
        let secret = try #require(server.environment["AWS_SECRET_ACCESS_KEY"])
        let bucket = try server.makeBucket("sec")
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let work = try TestScratch.Folder("secrets-s3")
        defer { work.remove() }
        let keys = try RepositoryFormatTests.keys("secs3")
        let repo = "s3://\(bucket)/repo"

        // ~/.aws/credentials with the right secret (profile vault) and a wrong one (profile stale).
        let home = work["home"]
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try """
            [vault]
            aws_access_key_id = \(server.accessKeyId)
            aws_secret_access_key = \(secret)
            [stale]
            aws_access_key_id = \(server.accessKeyId)
            aws_secret_access_key = \(Self.wrongSecret)
            """.write(toFile: home + "/.aws/credentials", atomically: false, encoding: .utf8)
        var base = ProcessInfo.processInfo.environment
        for key in base.keys where key.hasPrefix("AWS_") { base.removeValue(forKey: key) }
        base["HOME"] = home
        base["AWS_ENDPOINT_URL_S3"] = server.endpoint
        base["AWS_REGION"] = "us-east-1"
        var fromEnvironment = base
        fromEnvironment["AWS_ACCESS_KEY_ID"] = server.accessKeyId
        fromEnvironment["AWS_SECRET_ACCESS_KEY"] = secret
        var fromProfile = base
        fromProfile["AWS_PROFILE"] = "vault"

        let binary = try Shell.pgvault()
        var haystack: [(String, String)] = []
        func run(_ label: String, _ arguments: [String], _ environment: [String: String], status: Int32?) async throws {
            let titles = TitleSampler()
            let out = try await titles.sampling { try Shell.capture([binary] + arguments, environment: environment) }
            if let status { #expect(out.status == status, "\(label): \(out.stderr)") }
            haystack += [("\(label) stdout", out.stdout), ("\(label) stderr", out.stderr), ("\(label) process titles", titles.samples.joined(separator: "\n"))]
        }

        try await run("repo init", ["repo", "init", "--repo", repo, "--encrypt-to", keys.recipient, "--key-file", keys.keyFile], fromEnvironment, status: 0)
        for (label, environment) in [("environment", fromEnvironment), ("profile", fromProfile)] {
            let metrics = work["\(label).prom"]
            try await run("\(label) backup", [
                "backup", "-d", db.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--json", "--metrics-file", metrics,
            ], environment, status: 0)
            haystack.append(("\(label) metrics", (try? String(contentsOfFile: metrics, encoding: .utf8)) ?? ""))
            _ = try ExportQueue.enqueue(conn, userID: ExportFixture.alice)
            try await run("\(label) export-worker", [
                "export-worker", "-d", db.conninfo, "--output", "s3://\(bucket)/exports", "--presign", "1h",
                "--staging-dir", work["staging"], "--once", "--json",
            ], environment, status: 0)
        }

        // Failing commands: a wrong secret from the environment and from a profile, a session token.
        var wrongEnvironment = fromEnvironment
        wrongEnvironment["AWS_SECRET_ACCESS_KEY"] = Self.wrongSecret
        var stale = base
        stale["AWS_PROFILE"] = "stale"
        var withToken = fromEnvironment
        withToken["AWS_SESSION_TOKEN"] = Self.sessionToken
        try await run("wrong-secret backup", ["backup", "-d", db.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--json",
                                              "--metrics-file", work["failed.prom"]], wrongEnvironment, status: 2)
        haystack.append(("failed metrics", (try? String(contentsOfFile: work["failed.prom"], encoding: .utf8)) ?? ""))
        try await run("stale-profile list", ["list", "--repo", repo, "--key-file", keys.keyFile, "--json"], stale, status: 2)
        try await run("session-token list", ["list", "--repo", repo, "--key-file", keys.keyFile, "--json"], withToken, status: nil)
        try await run("session-token presign", ["export-worker", "-d", db.conninfo, "--output", "s3://\(bucket)/exports",
                                                "--presign", "1h", "--once", "--json"], withToken, status: 64)
        let failing = try ExportQueue.enqueue(conn, userID: ExportFixture.alice, maxAttempts: 1)
        try await run("stale-profile export-worker", ["export-worker", "-d", db.conninfo, "--output", "s3://\(bucket)/exports",
                                                      "--staging-dir", work["staging"], "--once", "--json"], stale, status: 0)
        let failed = try conn.query("SELECT status, last_error FROM data_export_requests WHERE id = $1", [String(failing)]).rows.first
        #expect(failed?[0] == "failed" && failed?[1]?.contains("SignatureDoesNotMatch") == true, "\(failed ?? [])")

        // Every request row, and every object pgvault wrote (snapshot catalogs, indexes, packs, packages).
        let rows = try conn.query("SELECT row_to_json(d)::text FROM data_export_requests d").rows.compactMap { $0[0] }
        #expect(rows.count == 3 && rows.filter { $0.contains("X-Amz-Signature") }.count == 2, "\(rows)")
        haystack.append(("request rows", rows.joined(separator: "\n")))
        let client = S3Client(configuration: server.configuration(), bucket: bucket)
        let objects = try client.listObjects(prefix: "", delimiter: nil, continuationToken: nil).objects
        #expect(objects.contains { $0.key.hasPrefix("repo/snapshots/") } && objects.contains { $0.key.hasPrefix("exports/") }, "\(objects.map(\.key))")
        for object in objects {
            var bytes: [UInt8] = []
            try client.getObject(object.key, range: nil) { bytes.append(contentsOf: $0) }
            haystack.append(("object \(object.key)", String(decoding: bytes, as: UTF8.self)))
        }
        #expect(haystack.contains { $0.0 == "environment export-worker process titles" && !$0.1.isEmpty }, "the worker's title was never seen")

        for (place, text) in haystack {
            for (name, value) in [("the secret", secret), ("the wrong secret", Self.wrongSecret), ("the session token", Self.sessionToken)] {
                #expect(!text.contains(value), "\(name) appears in \(place)")
            }
        }
    }
}
