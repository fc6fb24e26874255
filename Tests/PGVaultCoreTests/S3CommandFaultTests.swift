import CryptoDigest
import Foundation
import PGClient
@testable import PGVaultCore
@testable import S3Client
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Whole pgvault commands against a repository in moto, reached through
/// TestFaultProxy: faults that pass are retried through; faults that never
/// stop, refusals and signals end the backup cleanly, leaving no manifest
/// and (after prune at the latest) no pack and no upload of it.
@Suite("S3: whole commands through a failing network", .serialized)
struct S3CommandFaultTests {
    /// An encrypted repository `s3://<fresh bucket>/nightly`, and a proxy in front of moto.
    struct Fixture {
        let server: TestS3Server
        let bucket: String
        let repo: String
        let keys: RepositoryFormatTests.Keys
        let proxy: TestFaultProxy

        init(_ name: String) throws {
            server = try TestS3Server.shared()
            bucket = try server.makeBucket(name)
            repo = "s3://\(bucket)/nightly"
            keys = try RepositoryFormatTests.keys("\(name)-\(UUID().uuidString.prefix(6))")
            proxy = try TestFaultProxy(upstream: server.port, faults: [], share: 0, stallSeconds: 4)
            let made = try run(["repo", "init", "--repo", repo, "--encrypt-to", keys.recipient, "--key-file", keys.keyFile])
            try #require(made.status == 0, "\(made.stderr)")
        }

        /// pgvault's environment: the server's credentials, the proxy as the
        /// endpoint, `attempts` in all per request, and a request that moves
        /// no byte for 2 s counted as failed.
        func environment(attempts: Int = 12) -> [String: String] {
            var environment = server.environment
            environment["AWS_ENDPOINT_URL_S3"] = proxy.endpoint
            environment["AWS_MAX_ATTEMPTS"] = String(attempts)
            environment["PGVAULT_S3_STALL_SECONDS"] = "2"
            return environment
        }

        func run(_ arguments: [String], attempts: Int = 12) throws -> Shell.Output {
            var environment = ProcessInfo.processInfo.environment
            for (k, v) in self.environment(attempts: attempts) { environment[k] = v }
            return try Shell.capture([try Shell.pgvault()] + arguments, environment: environment)
        }

        func backup(_ db: TestDatabase) -> [String] {
            ["backup", "-d", db.conninfo, "--repo", repo, "--key-file", keys.keyFile, "--jobs", "2", "--quiet"]
        }

        /// Straight to moto, past the proxy.
        var direct: S3Client { S3Client(configuration: server.configuration(), bucket: bucket) }

        func packs() throws -> [String] {
            try S3ObjectStore(client: direct, prefix: "nightly/").list(prefix: "packs/").map(\.key)
        }

        func uploads() throws -> [String] { try direct.listMultipartUploads(prefix: "nightly/").map(\.key) }

        func backups() throws -> Int {
            let listed = try run(["list", "--repo", repo, "--key-file", keys.keyFile, "--json"])
            try #require(listed.status == 0, "\(listed.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]
            return try #require(object?["backups"] as? [[String: Any]]).count
        }

        func expectCheckPasses(readData: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let checked = try run(["check", "--repo", repo, "--identity", keys.identity] + (readData ? ["--read-data"] : []))
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// A table of `mebibytes` MiB that does not compress (MD5s as bytes).
    /// With `--jobs 2` it fills two packs of about half that each; a pack
    /// over 8 MiB (a part) goes up as a multipart upload.
    static func addBlobs(_ db: TestDatabase, table: String = "blobs", mebibytes: Int) async throws {
        try await Blocking.run("blobs") {
            try db.connect().execute("""
                CREATE TABLE \(SQL.ident(table)) (id int PRIMARY KEY, payload bytea);
                INSERT INTO \(SQL.ident(table))
                SELECT i, decode(string_agg(md5(i::text || ':' || j::text || '\(table)'), ''), 'hex')
                FROM generate_series(1, \(mebibytes * 1024)) i, generate_series(1, 64) j GROUP BY i;
                """)
        }
    }

    static func waitFor(_ what: String, seconds: Double = 60, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            try #require(Date() < deadline, "\(what) did not happen within \(seconds) s")
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test("AWS_MAX_ATTEMPTS and PGVAULT_S3_STALL_SECONDS set the attempts and the stall limit; a value that is no whole number ≥ 1 is a usage error naming the variable")
    func retrySettings() throws {
        let base = ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1", "HOME": "/nonexistent"]
        let defaults = try S3ObjectStore.open("s3://bkt/r", environment: base)
        #expect(defaults.client.retry.maxAttempts == 8 && defaults.client.http.timeouts.stallSeconds == 30)
        let set = try S3ObjectStore.open("s3://bkt/r", environment: base.merging(["AWS_MAX_ATTEMPTS": "3", "PGVAULT_S3_STALL_SECONDS": "5"]) { $1 })
        #expect(set.client.retry.maxAttempts == 3 && set.client.http.timeouts.stallSeconds == 5)
        for (name, value) in [("AWS_MAX_ATTEMPTS", "0"), ("AWS_MAX_ATTEMPTS", "many"), ("PGVAULT_S3_STALL_SECONDS", "-1")] {
            let error = try #require(throws: PGVaultError.self) { _ = try S3ObjectStore.open("s3://bkt/r", environment: base.merging([name: value]) { $1 }) }
            #expect(error.kind == .usage && error.description.contains(name) && error.description.contains("'\(value)'"), "\(error)")
        }
    }

    @Test("ListMultipartUploads names each open upload by its key and id (moto sends the id before the key); an aborted one is gone")
    func listsOpenUploads() throws {
        let server = try TestS3Server.shared()
        let client = S3Client(configuration: server.configuration(), bucket: try server.makeBucket("mu"))
        let first = try client.createMultipartUpload("r/packs/one")
        let second = try client.createMultipartUpload("r/packs/two")
        let listed = try client.listMultipartUploads(prefix: "r/").map { "\($0.key) \($0.uploadId)" }.sorted()
        #expect(listed == ["r/packs/one \(first)", "r/packs/two \(second)"])
        try client.abortMultipartUpload("r/packs/one", uploadId: first)
        #expect(try client.listMultipartUploads(prefix: "r/").map(\.key) == ["r/packs/two"])
    }

    @Test("an answer lost after the service acted: a PUT that must not overwrite finds its own object and succeeds; a multipart upload started twice leaves no second upload open")
    func lostAnswers() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket("la")
        let proxy = try TestFaultProxy(upstream: server.port, faults: [], share: 0)
        defer { proxy.stop() }
        let store = try S3FaultTests.store(through: proxy, bucket: bucket, attempts: 4)
        proxy.inject(.lostAnswer, intoNext: "PUT /\(bucket)/r/small")
        try store.put("small", bytes: [1, 2, 3], ifAbsent: true)
        #expect(try S3FaultTests.read(store, "small") == [1, 2, 3])
        // Someone else's object under the key is still refused.
        let taken = try #require(throws: PGVaultError.self) { try store.put("small", bytes: [4], ifAbsent: true) }
        #expect(taken.description.contains("already exists"))

        proxy.inject(.lostAnswer, intoNext: "?uploads")
        let big = [UInt8](repeating: 7, count: 6 << 20)
        try store.put("big", bytes: big, ifAbsent: true)
        #expect(proxy.tally["lostAnswer"] == 2)
        #expect(try store.head("big")?.size == Int64(big.count))
        let direct = S3Client(configuration: server.configuration(), bucket: bucket)
        #expect(try direct.listMultipartUploads(prefix: "").isEmpty)
    }

    @Test("500, 503, SlowDown, dropped and cut connections, lost answers and stalls past the client's timeout: backup, check --read-data and restore all complete, the restored tables equal the source",
          arguments: TestServers.versions)
    func transientFaults(major: Int) async throws {
        let f = try Fixture("tf\(major)")
        defer { f.proxy.stop() }
        let db = try await BackupTests.chatDatabase(major)
        try await Self.addBlobs(db, mebibytes: 20)
        let faults: [TestFaultProxy.Fault] = [.serverError, .unavailable, .slowDown, .drop, .stall, .cutResponse, .lostAnswer]
        f.proxy.cycle(faults, every: 3)
        let backup = try f.run(f.backup(db))
        let tally = f.proxy.tally
        try #require(backup.status == 0, "\(backup.stderr)\n\(tally)")
        // Each kind of fault happened, and the backup went up in parts: the test cannot pass without retries.
        for fault in faults { #expect(tally["\(fault)", default: 0] >= 1, "\(tally)") }
        #expect(f.proxy.requestLines.contains { $0.contains("partNumber=") })

        try f.expectCheckPasses(readData: true)
        let target = try db.sibling(prefix: "s3tf")
        let restored = try f.run(["restore", "--repo", f.repo, "--backup", "latest", "--identity", f.keys.identity, "-d", target.conninfo, "--jobs", "2", "--quiet"])
        #expect(restored.status == 0, "\(restored.stderr)\n\(f.proxy.tally)")
        try RestoreFixtures.expectSameTables(try db.connect(), try target.connect())
        #expect(f.proxy.tally.values.reduce(0, +) - f.proxy.tally["forwarded", default: 0] > tally.values.reduce(0, +) - tally["forwarded", default: 0],
                "the reads met no fault")
    }

    @Test("the service fails for good mid-backup (every request 503, or every connection dropped): the backup fails within a bounded time naming the bucket, the endpoint and what to check; no manifest; check passes; prune removes the orphaned packs and aborts the upload left open",
          arguments: [TestFaultProxy.Fault.unavailable, .drop])
    func faultsThatNeverStop(fault: TestFaultProxy.Fault) async throws {
        let f = try Fixture("nf")
        defer { f.proxy.stop() }
        let db = try await BackupTests.chatDatabase(TestServers.newest)
        let first = try f.run(f.backup(db))
        try #require(first.status == 0, "\(first.stderr)")
        let livePacks = try f.packs()

        // 24 MiB more, in two packs of about 12 (one per job), each a multipart upload: the first is committed before the service fails.
        try await Self.addBlobs(db, mebibytes: 24)
        let run = try Interrupting(f.backup(db), environment: f.environment(attempts: 4))
        try await Self.waitFor("a multipart upload's completion") { f.proxy.requestLines.contains { $0.hasPrefix("POST") && $0.contains("uploadId=") } }
        let failedAt = Date()
        f.proxy.setFaults([fault], share: 1)
        let exited = await Fault.waitExit(run.process, seconds: 90)
        try #require(exited, "the backup did not give up within 90 s")
        let took = Date().timeIntervalSince(failedAt)
        f.proxy.setFaults([], share: 0)

        #expect(run.process.terminationStatus == 2, "\(run.stderr)")
        #expect(took < 45, "giving up took \(took) s")
        let stderr = run.stderr
        #expect(stderr.contains("s3://\(f.bucket)/nightly") && stderr.contains(f.proxy.endpoint), "\(stderr)")
        #expect(stderr.contains(fault == .drop ? "check the endpoint" : "try again later"), "\(stderr)")
        #expect(stderr.contains("after 4 attempts"), "\(stderr)")

        #expect(try f.backups() == 1, "the failed backup is listed")
        try f.expectCheckPasses()
        let orphans = Set(try f.packs()).subtracting(livePacks)
        #expect(!orphans.isEmpty, "the failed backup left no pack: the test proves nothing of prune")
        // And an upload a killed backup (kill -9) left, for certain.
        _ = try f.direct.createMultipartUpload("nightly/packs/ff/ff000000000000000000000000000000")
        let open = try f.uploads()
        let pruned = try f.run(["prune", "--repo", f.repo, "--key-file", f.keys.keyFile, "--json"])
        #expect(pruned.status == 0, "\(pruned.stdout)\(pruned.stderr)")
        #expect(pruned.stdout.contains("\"uploadsAborted\":\(open.count)"), "\(open) \(pruned.stdout)")
        #expect(Set(try f.packs()) == Set(livePacks))
        #expect(try f.uploads().isEmpty)
        #expect(try f.backups() == 1)
        try f.expectCheckPasses(readData: true)
    }

    @Test("refusals fail at once with the service's own code and what to check: a wrong secret, an unknown key id, no such bucket, 403 AccessDenied on the packs")
    func refusalsFailAtOnce() async throws {
        let f = try Fixture("pe")
        defer { f.proxy.stop() }
        let db = try TestServers.database(prefix: "s3pe")
        try db.connect().execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) i;")

        func expectRefused(_ arguments: [String], environment change: [String: String] = [:], says: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            var environment = ProcessInfo.processInfo.environment
            for (k, v) in f.environment(attempts: 8).merging(change, uniquingKeysWith: { $1 }) { environment[k] = v }
            let started = Date()
            let out = try Shell.capture([try Shell.pgvault()] + arguments, environment: environment)
            #expect(out.status == 2, "\(out.stderr)", sourceLocation: sourceLocation)
            for text in says { #expect(out.stderr.contains(text), "no '\(text)' in: \(out.stderr)", sourceLocation: sourceLocation) }
            #expect(!out.stderr.contains("attempts"), "a refusal was retried: \(out.stderr)", sourceLocation: sourceLocation)
            #expect(Date().timeIntervalSince(started) < 15, "a refusal took long", sourceLocation: sourceLocation)
            #expect(!out.stderr.contains("wrong-secret-0123456789"), sourceLocation: sourceLocation)
        }
        let list = ["list", "--repo", f.repo, "--key-file", f.keys.keyFile]
        try expectRefused(list, environment: ["AWS_SECRET_ACCESS_KEY": "wrong-secret-0123456789"], says: ["SignatureDoesNotMatch", "AWS_ACCESS_KEY_ID", "clock"])
        try expectRefused(list, environment: ["AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"], says: ["InvalidAccessKeyId", "check the credentials"])
        try expectRefused(["list", "--repo", "s3://no-such-bucket-\(f.bucket)/nightly", "--key-file", f.keys.keyFile], says: ["NoSuchBucket", "check the bucket name", f.proxy.endpoint])

        // A policy that lets the backup role read the repository but not add packs.
        f.proxy.refuse(requestsContaining: "/nightly/packs/", status: 403, code: "AccessDenied", message: "Access Denied")
        try expectRefused(f.backup(db), says: ["AccessDenied", "Access Denied", "may not do this on bucket '\(f.bucket)'", "policy"])
        #expect(f.proxy.tally["refused", default: 0] <= 2, "\(f.proxy.tally)")
        #expect(try f.backups() == 0)
        #expect(try f.uploads().isEmpty)
    }

    @Test("a signal mid-upload: exit 128+signal, no manifest, no multipart upload left, check passes", arguments: [SIGINT, SIGTERM])
    func signalMidUpload(signal: Int32) async throws {
        let f = try Fixture("sg")
        defer { f.proxy.stop() }
        let db = try TestServers.database(prefix: "s3sg")
        try await Self.addBlobs(db, mebibytes: 20)
        // Parts go up slowly, so the upload is surely in progress when the signal comes.
        f.proxy.delay(requestsContaining: "partNumber=", seconds: 1.5)
        let run = try Interrupting(f.backup(db), environment: f.environment())
        try await Self.waitFor("a part upload") { f.proxy.requestLines.contains { $0.contains("partNumber=") } }
        #expect(!f.proxy.requestLines.contains { $0.hasPrefix("POST") && $0.contains("uploadId=") }, "an upload completed before the signal")
        try await run.interrupt(signal)
        run.expectInterrupted(by: signal)
        #expect(try f.uploads().isEmpty, "the interrupted backup left its multipart upload open")
        #expect(try f.backups() == 0)
        try f.expectCheckPasses()
    }

    /// moto keeps `x-amz-checksum-sha256` without comparing it with the body
    /// (moto/s3/responses.py, `_get_checksum`: "TODO: AWS computes the provided
    /// value and verifies it's the same"), and takes `x-amz-content-sha256` as
    /// the signed payload hash without hashing the body; AWS refuses a
    /// mismatch of either (BadDigest, XAmzContentSHA256Mismatch). So a
    /// corrupted body cannot be shown refused here: instead every request's
    /// headers are checked against the body that went out.
    @Test("every upload carries x-amz-checksum-sha256 and x-amz-content-sha256 matching the body that went out (single PUTs and parts)")
    func uploadsCarryTheirChecksums() async throws {
        let f = try Fixture("ck")
        defer { f.proxy.stop() }
        let db = try TestServers.database(prefix: "s3ck")
        try await Self.addBlobs(db, mebibytes: 20)
        try db.connect().execute("CREATE TABLE small (id int); INSERT INTO small SELECT generate_series(1, 100);")
        f.proxy.record()
        let backup = try f.run(f.backup(db))
        try #require(backup.status == 0, "\(backup.stderr)")

        var puts = 0
        var parts = 0
        for request in f.proxy.recordedRequests {
            let digest = try SHA2()
            try digest.update(request.body)
            let sha = try digest.finalize()
            #expect(request.header("x-amz-content-sha256") == Hex.encode(sha), "\(request.line)")
            guard request.line.hasPrefix("PUT") else { continue }
            #expect(request.header("x-amz-checksum-sha256") == Data(sha).base64EncodedString(), "\(request.line)")
            if request.line.contains("partNumber=") { parts += 1 } else { puts += 1 }
        }
        #expect(parts >= 2 && puts >= 3, "too few uploads seen: \(parts) parts, \(puts) single PUTs \(f.proxy.recordedRequests.map { "\($0.line) \($0.body.count)" })")
    }
}
