import CryptoDigest
import Foundation
import HTTPClient
@testable import PGVaultCore
import S3Client
import Testing
import TestSupport

/// S3 through a proxy that fails requests the way networks and busy services
/// do (TestFaultProxy): retries carry writes and reads through; a service
/// that never recovers gives a clean error and leaves no object.
@Suite("storage: S3 through faults")
struct S3FaultTests {
    static func store(through proxy: TestFaultProxy, bucket: String, attempts: Int) throws -> S3ObjectStore {
        let server = try TestS3Server.shared()
        let http = HTTPClient(timeouts: HTTPTimeouts(connectMilliseconds: 2000, stallSeconds: 2))
        let client = S3Client(
            configuration: server.configuration(endpoint: proxy.endpoint), bucket: bucket,
            retry: S3RetryPolicy(maxAttempts: attempts, baseDelay: 0.01, maxDelay: 0.2), http: http)
        return S3ObjectStore(client: client, prefix: "r/", partSize: 5 << 20, partsInFlight: 2)
    }

    static func read(_ store: any ObjectStore, _ key: String, range: Range<Int64>? = nil) throws -> [UInt8] {
        var out: [UInt8] = []
        try store.get(key, range: range) { out.append(contentsOf: $0) }
        return out
    }

    @Test("500, 503, SlowDown, dropped and cut connections and stalls: writes and reads still succeed")
    func retriesCarryThrough() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket()
        let proxy = try TestFaultProxy(upstream: server.port, faults: TestFaultProxy.Fault.allCases, share: 0.3, stallSeconds: 3)
        defer { proxy.stop() }
        let store = try Self.store(through: proxy, bucket: bucket, attempts: 12)
        let big = (0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 11) }
        try store.put("big", bytes: big)
        for i in 0..<12 { try store.put("small/\(i)", bytes: Array(repeating: UInt8(i), count: 1000 + i)) }

        #expect(try SHA2.hex(of: try Self.read(store, "big")) == (try SHA2.hex(of: big)))
        #expect(try Self.read(store, "big", range: 5_000_000..<5_300_000) == Array(big[5_000_000..<5_300_000]))
        for i in 0..<12 { #expect(try Self.read(store, "small/\(i)") == Array(repeating: UInt8(i), count: 1000 + i)) }
        #expect(try store.list(prefix: "small/").count == 12)
        try store.delete("small/0")
        #expect(try store.head("small/0") == nil)

        let tally = proxy.tally
        let spoiled = tally.filter { $0.key != "forwarded" }.values.reduce(0, +)
        #expect(spoiled >= 5, "the proxy spoiled too few requests to test anything: \(tally)")
    }

    @Test("a service that keeps failing: a clean error naming the service's code and the attempts, and no object")
    func permanentFailure() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket()
        let proxy = try TestFaultProxy(upstream: server.port, faults: [.serverError, .slowDown], share: 1)
        defer { proxy.stop() }
        let store = try Self.store(through: proxy, bucket: bucket, attempts: 3)
        let small = try #require(throws: PGVaultError.self) { try store.put("k", bytes: [1, 2, 3]) }
        #expect(small.kind == .io)
        #expect(small.description.contains("'k'"))
        #expect(small.description.contains("after 3 attempts"))
        #expect(small.description.contains("InternalError") || small.description.contains("SlowDown"))

        let big = [UInt8](repeating: 9, count: 6 << 20)
        #expect(throws: PGVaultError.self) { try store.put("big", bytes: big) }
        // Straight to the server: nothing was made.
        let direct = S3ObjectStore(client: S3Client(configuration: server.configuration(), bucket: bucket), prefix: "r/")
        #expect(try direct.list(prefix: "").isEmpty)
    }

    @Test("a wrong secret: refused at once with SignatureDoesNotMatch, naming the credentials' source, not the secret")
    func wrongSecret() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket()
        let client = S3Client(configuration: server.configuration(secret: "wrong-secret-0123456789"), bucket: bucket)
        let store = S3ObjectStore(client: client, prefix: "")
        let error = try #require(throws: PGVaultError.self) { try store.put("k", bytes: [1]) }
        #expect(error.description.contains("SignatureDoesNotMatch"))
        #expect(error.description.contains("the test harness"))
        #expect(error.description.contains("clock"))
        #expect(!error.description.contains("wrong-secret-0123456789"))
        #expect(!error.description.contains("after"))  // not retried
    }

    @Test("no such bucket: refused at once, saying to check the bucket name, endpoint and region")
    func noSuchBucket() throws {
        let server = try TestS3Server.shared()
        let store = S3ObjectStore(client: S3Client(configuration: server.configuration(), bucket: "no-such-bucket-here"), prefix: "")
        let error = try #require(throws: PGVaultError.self) { _ = try store.list(prefix: "") }
        #expect(error.description.contains("NoSuchBucket"))
        #expect(error.description.contains("check the bucket name"))
    }
}
