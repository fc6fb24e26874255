import CryptoDigest
import Foundation
import PGClient
@testable import PGVaultCore
import S3Client
import TestSupport
import Testing

/// `export-worker --output s3://BUCKET/PREFIX [--presign DURATION]` against
/// moto (authentication on) and a real PostgreSQL: the package is delivered
/// to the bucket, the request row records its key and a pre-signed link,
/// and plain curl, with no credentials, downloads exactly that package.
@Suite("export-worker: packages delivered to S3")
struct ExportS3Tests {
    /// pgvault with the S3 server's environment plus `extra`.
    static func pgvault(_ server: TestS3Server, _ arguments: [String], _ extra: [String: String] = [:]) throws -> Shell.Output {
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("AWS_") { environment.removeValue(forKey: key) }
        for (k, v) in server.environment { environment[k] = v }
        for (k, v) in extra { environment[k] = v }
        return try Shell.capture([try Shell.pgvault()] + arguments, environment: environment)
    }

    /// `/usr/bin/curl` with no credentials and no configuration: the status code, and the body in `file`.
    static func curl(_ url: String, to file: String) throws -> String {
        let out = try Shell.capture(
            ["/usr/bin/curl", "--silent", "--show-error", "--disable", "--output", file, "--write-out", "%{http_code}", url],
            environment: ["PATH": "/usr/bin:/bin"])
        return out.stdout
    }

    static func object(_ server: TestS3Server, _ bucket: String, _ key: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try S3Client(configuration: server.configuration(), bucket: bucket).getObject(key, range: nil) { bytes.append(contentsOf: $0) }
        return bytes
    }

    @Test("--output s3:// --presign 1h: the row holds the key, the package's size and digest and a link that expires in an hour; the object is the user's package; the link is never printed")
    func deliveredAndPresigned() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket("exp")
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let id = try ExportQueue.enqueue(conn, userID: ExportFixture.alice)
        let scratch = try TestScratch.Folder("export-s3")
        defer { scratch.remove() }

        let run = try Self.pgvault(server, [
            "export-worker", "-d", db.conninfo, "--output", "s3://\(bucket)/exports/daily", "--presign", "1h",
            "--staging-dir", scratch["staging"], "--once", "--json",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let key = "exports/daily/user-\(ExportFixture.alice)-request-\(id).zip"
        let row = try #require(try conn.query("""
            SELECT status, output_path, output_key, output_bytes, output_sha256, download_url,
                   extract(epoch FROM download_expires_at - now())
            FROM data_export_requests WHERE id = $1
            """, [String(id)]).rows.first)
        #expect(row[0] == "done" && row[1] == "s3://\(bucket)/\(key)" && row[2] == key, "\(row)")
        let url = try #require(row[5])
        let remaining = Double(row[6] ?? "") ?? 0
        #expect(remaining > 3500 && remaining <= 3600, "the link expires in \(remaining) s")
        #expect(url.hasPrefix("\(server.endpoint)/\(bucket)/\(key)?") && url.contains("X-Amz-Expires=3600"), "\(url)")
        // The link is a bearer token for the user's data: only in the row, never in the output.
        let signature = try #require(url.components(separatedBy: "X-Amz-Signature=").last)
        #expect(!(run.stdout + run.stderr).contains(signature))
        #expect(run.stderr.contains("download link recorded"), "\(run.stderr)")
        // Nothing staged is left behind.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: scratch["staging"])) == [])

        // The object is the recorded package of the user.
        let stored = try Self.object(server, bucket, key)
        try Data(stored).write(to: URL(fileURLWithPath: scratch["stored.zip"]))
        let digest = try SHA2.hex(of: stored)
        #expect(String(stored.count) == row[3] && digest == row[4])
        try expectPackageMatchesDatabase(try readPackage(scratch["stored.zip"]), conn, user: String(ExportFixture.alice))

    }

    /// moto (5.x) cannot check a pre-signed request while its checking is on
    /// (its IAM check reads only the Authorization header and answers 500), so
    /// the link is downloaded from a moto that checks nothing
    /// (``TestS3Server/unchecked()``): this proves the link names the object
    /// and that plain curl, with no credentials, gets the user's package
    /// through it. That the signature is right is proven against AWS's
    /// published example (presignedURLShape); that a changed or expired link
    /// is refused is the service's part, and moto does not do it.
    @Test("the recorded pre-signed link downloads the user's package with plain curl, no credentials")
    func presignedLinkDownloads() throws {
        let server = try TestS3Server.unchecked()
        let bucket = try server.makeBucket("expl")
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let id = try ExportQueue.enqueue(conn, userID: ExportFixture.alice)
        let scratch = try TestScratch.Folder("export-s3-link")
        defer { scratch.remove() }
        let run = try Self.pgvault(server, [
            "export-worker", "-d", db.conninfo, "--output", "s3://\(bucket)/exports", "--presign", "2h",
            "--staging-dir", scratch["staging"], "--once",
        ])
        try #require(run.status == 0, "\(run.stderr)")
        let url = try #require(try conn.query("SELECT download_url FROM data_export_requests WHERE id = $1", [String(id)]).scalar)
        #expect(url.contains("X-Amz-Expires=7200") && url.contains("X-Amz-Signature="), "\(url)")
        let downloaded = scratch["downloaded.zip"]
        #expect(try Self.curl(url, to: downloaded) == "200")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: downloaded)))
        #expect(bytes == (try Self.object(server, bucket, "exports/user-\(ExportFixture.alice)-request-\(id).zip")))
        try expectPackageMatchesDatabase(try readPackage(downloaded), conn, user: String(ExportFixture.alice))
        // The link names that one object: another request's name is not there.
        let other = url.replacingOccurrences(of: "request-\(id).zip", with: "request-\(id + 1).zip")
        #expect(try Self.curl(other, to: scratch["other"]) == "404")
    }

    @Test("a wrong secret: the upload is refused, the request fails with the service's reason (never the secret), nothing is left in the bucket")
    func wrongSecret() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket("expw")
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let id = try ExportQueue.enqueue(conn, userID: ExportFixture.alice, maxAttempts: 2)
        let scratch = try TestScratch.Folder("export-s3-wrong")
        defer { scratch.remove() }
        let wrong = "Wrong-S3-secret-leak-canary"
        let run = try Self.pgvault(server, [
            "export-worker", "-d", db.conninfo, "--output", "s3://\(bucket)/exports", "--presign", "12h",
            "--staging-dir", scratch.path, "--once",
        ], ["AWS_SECRET_ACCESS_KEY": wrong])
        #expect(run.status == 0, "failures are recorded in the request, not in the exit status: \(run.stderr)")
        #expect(run.stderr.contains("attempt 1 failed, will retry") && run.stderr.contains("attempt 2 failed for the last time"), "\(run.stderr)")
        #expect(run.stderr.contains("SignatureDoesNotMatch"), "\(run.stderr)")
        let row = try #require(try conn.query(
            "SELECT status, attempts, last_error, output_path, output_key, download_url FROM data_export_requests WHERE id = $1", [String(id)]
        ).rows.first)
        #expect(row[0] == "failed" && row[1] == "2" && row[3] == nil && row[4] == nil && row[5] == nil, "\(row)")
        let error = try #require(row[2])
        #expect(error.contains("s3://\(bucket)/exports") && error.contains("SignatureDoesNotMatch") && error.contains(server.accessKeyId), "\(error)")
        #expect(!(error + run.stdout + run.stderr).contains(wrong))
        let client = S3Client(configuration: server.configuration(), bucket: bucket)
        #expect(try client.listObjects(prefix: "", delimiter: nil, continuationToken: nil).objects.isEmpty)
        #expect(try client.listMultipartUploads(prefix: "").isEmpty)
        #expect(scratch.names.isEmpty, "\(scratch.names)")
    }

    @Test("--presign: more than 7 days, with a folder, or with temporary credentials is refused before any work", arguments: [
        (["--output", "s3://b-presign/x", "--presign", "8d"], [:], "between 1s and 7d"),
        (["--output", "s3://b-presign/x", "--presign", "0"], [:], "between 1s and 7d"),
        (["--output-dir", "SCRATCH", "--presign", "1h"], [:], "'--presign' needs --output s3://"),
        (["--output", "s3://b-presign/x", "--presign", "1h"], ["AWS_SESSION_TOKEN": "Session-token-leak-canary"], "temporary credentials"),
    ] as [([String], [String: String], String)])
    func presignRefused(arguments: [String], extra: [String: String], message: String) throws {
        let server = try TestS3Server.shared()
        let scratch = try TestScratch.Folder("export-s3-usage")
        defer { scratch.remove() }
        let args = arguments.map { $0 == "SCRATCH" ? scratch.path : $0 }
        let run = try Self.pgvault(server, ["export-worker", "-d", "dbname=absent host=/nonexistent", "--once"] + args, extra)
        #expect(run.status == 64, "\(run.status): \(run.stderr)")
        #expect(run.stderr.contains(message), "\(run.stderr)")
        #expect(!run.stderr.contains("leak-canary"))
    }

    @Test("pre-signed links: at most 7 days (S3's limit), the key encoded in the path, the signature over UNSIGNED-PAYLOAD")
    func presignedURLShape() throws {
        let configuration = S3Configuration(
            scheme: "https", host: "s3.amazonaws.com", port: nil, region: "us-east-1", addressing: .virtual,
            credentials: AWSCredentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", source: "AWS's S3 documentation"))
        let client = S3Client(configuration: configuration, bucket: "examplebucket")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        // AWS's published example ("Authenticating Requests: Using Query Parameters"), as a whole URL.
        let url = try client.presignedGetURL("test.txt", expires: 86400, date: date)
        #expect(url == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
            + "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(try client.presignedGetURL("a b/ü.zip", expires: 1, date: date).hasPrefix("https://examplebucket.s3.amazonaws.com/a%20b/%C3%BC.zip?"))
        _ = try client.presignedGetURL("test.txt", expires: S3Client.maxPresignSeconds, date: date)
        for bad in [0, -1, S3Client.maxPresignSeconds + 1] {
            let error = try #require(throws: S3PresignError.self) { _ = try client.presignedGetURL("test.txt", expires: bad, date: date) }
            #expect(error.description.contains("7 days"))
        }
    }
}
