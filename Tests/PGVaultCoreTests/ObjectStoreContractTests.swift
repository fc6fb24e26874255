import CryptoDigest
import Foundation
import HTTPClient
@testable import PGVaultCore
import S3Client
import Testing
import TestSupport

/// The contract of docs/storage.md, run against every store: the local
/// folder and S3 (moto's server, authentication on, never a mock).
@Suite("storage: the ObjectStore contract, local folder and S3")
struct ObjectStoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case local, s3
        var testDescription: String { rawValue }
    }

    /// A fresh, empty store of `kind` and what removes it.
    static func store(_ kind: Kind, _ name: String) throws -> (any ObjectStore, () -> Void) {
        switch kind {
        case .local:
            let folder = try TestScratch.Folder(name)
            return (LocalFolderStore(root: folder.path), { folder.remove() })
        case .s3:
            let server = try TestS3Server.shared()
            let client = S3Client(configuration: server.configuration(), bucket: try server.makeBucket(), retry: S3RetryPolicy(maxAttempts: 3, baseDelay: 0.01))
            // The smallest part S3 allows, so that a multipart object stays small.
            return (S3ObjectStore(client: client, prefix: "repo/", partSize: 5 << 20, partsInFlight: 2), {})
        }
    }

    static func read(_ store: any ObjectStore, _ key: String, range: Range<Int64>? = nil) throws -> [UInt8] {
        var out: [UInt8] = []
        try store.get(key, range: range) { out.append(contentsOf: $0) }
        return out
    }

    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) } }

    @Test("put, get, ranges, head, list (recursive and delimited), delete (idempotent)", arguments: Kind.allCases)
    func basics(_ kind: Kind) throws {
        let (store, remove) = try Self.store(kind, "contract-basics")
        defer { remove() }
        let bytes = Self.pattern(100_000)
        #expect(try store.put("b1/data/u1.zst", bytes: bytes) == 100_000)
        try store.put("b1/manifest.json", bytes: Array("{}".utf8))
        try store.put("b10/manifest.json", bytes: [])
        try store.put("b2.tar", bytes: [1, 2, 3])

        #expect(try Self.read(store, "b1/data/u1.zst") == bytes)
        #expect(try Self.read(store, "b1/data/u1.zst", range: 10..<5000) == Array(bytes[10..<5000]))
        #expect(try Self.read(store, "b1/data/u1.zst", range: 99_999..<100_000) == [bytes[99_999]])
        #expect(try Self.read(store, "b1/data/u1.zst", range: 5..<5) == [])
        #expect(try store.head("b2.tar") == ObjectInfo(key: "b2.tar", size: 3))
        #expect(try store.head("b10/manifest.json") == ObjectInfo(key: "b10/manifest.json", size: 0))
        #expect(try store.head("nothing/here") == nil)

        #expect(try store.list(prefix: "").map(\.key) == ["b1/data/u1.zst", "b1/manifest.json", "b10/manifest.json", "b2.tar"])
        #expect(try store.list(prefix: "b1/").map(\.key) == ["b1/data/u1.zst", "b1/manifest.json"])
        let top = try store.list(prefix: "", delimited: true)
        #expect(top.objects.map(\.key) == ["b2.tar"])
        #expect(top.prefixes == ["b1/", "b10/"])
        let under = try store.list(prefix: "b1/", delimited: true)
        #expect(under.objects.map(\.key) == ["b1/manifest.json"])
        #expect(under.prefixes == ["b1/data/"])

        try store.delete("b2.tar")
        try store.delete("b2.tar")
        try store.delete("never/was")
        #expect(try store.head("b2.tar") == nil)
    }

    @Test("a missing object and a range past the end are errors, never short reads", arguments: Kind.allCases)
    func missingAndPastEnd(_ kind: Kind) throws {
        let (store, remove) = try Self.store(kind, "contract-missing")
        defer { remove() }
        try store.put("k", bytes: Self.pattern(1000))
        let missing = try #require(throws: PGVaultError.self) { try Self.read(store, "absent") }
        #expect(missing.isMissingObject)
        #expect(missing.kind == .archive)
        #expect(missing.description.contains("'absent'"))
        for range: Range<Int64> in [990..<1001, 1000..<1010, 2000..<3000] {
            let error = try #require(throws: PGVaultError.self) { try Self.read(store, "k", range: range) }
            #expect(error.kind == .archive)
            #expect(error.description.contains("1000 bytes"))
        }
    }

    @Test("a writer that aborts, or is dropped, or whose body throws, leaves nothing; ifAbsent refuses a taken key", arguments: Kind.allCases)
    func atomicity(_ kind: Kind) throws {
        let (store, remove) = try Self.store(kind, "contract-atomic")
        defer { remove() }
        struct Stop: Error {}
        let big = Self.pattern(11 << 20)  // three parts on S3
        let writer = try store.writer(for: "a/aborted", ifAbsent: false)
        try big.withUnsafeBytes { try writer.write($0) }
        writer.abort()
        do {
            let dropped = try store.writer(for: "a/dropped", ifAbsent: false)
            try big.withUnsafeBytes { try dropped.write($0) }
        }
        #expect(throws: Stop.self) {
            try store.put("a/thrown") { write in
                try big.withUnsafeBytes { try write($0) }
                throw Stop()
            }
        }
        #expect(try store.list(prefix: "").isEmpty)
        if let s3 = store as? S3ObjectStore {
            #expect(try s3.client.listMultipartUploads(prefix: "").isEmpty)
        }

        try store.put("once", bytes: [1], ifAbsent: true)
        let taken = try #require(throws: PGVaultError.self) { try store.put("once", bytes: [2], ifAbsent: true) }
        #expect(taken.isExistingObject)
        let takenBig = try #require(throws: PGVaultError.self) { try store.put("once", bytes: big, ifAbsent: true) }
        #expect(takenBig.isExistingObject)
        #expect(try Self.read(store, "once") == [1])
        try store.put("once", bytes: [3])  // replacing is allowed without ifAbsent
        #expect(try Self.read(store, "once") == [3])
    }

    @Test("an object of more than two parts round-trips, SHA-256 equal, written in uneven pieces", arguments: Kind.allCases)
    func multipart(_ kind: Kind) throws {
        let (store, remove) = try Self.store(kind, "contract-multipart")
        defer { remove() }
        let bytes = Self.pattern((5 << 20) * 2 + 123_457)
        let size = try store.put("big/object") { write in
            var i = 0
            while i < bytes.count {
                let n = min(300_007, bytes.count - i)
                try bytes[i..<(i + n)].withUnsafeBytes { try write($0) }
                i += n
            }
        }
        #expect(size == Int64(bytes.count))
        #expect(try store.head("big/object")?.size == Int64(bytes.count))
        let readBack = try Self.read(store, "big/object")
        #expect(try SHA2.hex(of: readBack) == (try SHA2.hex(of: bytes)))
        let tail = try Self.read(store, "big/object", range: Int64(bytes.count - 10)..<Int64(bytes.count))
        #expect(tail == Array(bytes.suffix(10)))
    }

    @Test("a listing of more than 1000 keys follows the continuation tokens")
    func longListing() throws {
        let (store, remove) = try Self.store(.s3, "contract-long")
        defer { remove() }
        for i in 0..<1003 { try store.put(String(format: "many/k%05d", i), bytes: []) }
        let keys = try store.list(prefix: "many/").map(\.key)
        #expect(keys.count == 1003)
        #expect(keys.last == "many/k01002")
    }
}
