import Foundation
@testable import PGVaultCore
import Support
import Testing
import TestSupport

/// The read-ahead of a restore (``ObjectReadAhead``), against moto's S3
/// server and the local folder: the bytes equal direct reads, adjacent ranges
/// share a GET, and the window bounds what is fetched and not consumed.
@Suite("storage: read-ahead of ranged reads")
struct ObjectReadAheadTests {
    typealias Kind = ObjectStoreContractTests.Kind

    /// Counts the GETs a store serves and the bytes they ask for.
    final class CountingStore: ObjectStore, @unchecked Sendable {
        let inner: any ObjectStore
        /// Bytes of every GET started so far, in order; and what the test
        /// says was consumed when each started.
        let log = Locked<(requested: Int, gets: Int, peakAhead: Int, consumed: Int)>((0, 0, 0, 0))

        init(_ inner: any ObjectStore) { self.inner = inner }

        var location: String { inner.location }
        func writer(for key: String, ifAbsent: Bool) throws -> any ObjectWriter { try inner.writer(for: key, ifAbsent: ifAbsent) }
        func head(_ key: String) throws -> ObjectInfo? { try inner.head(key) }
        func list(prefix: String, delimited: Bool) throws -> ObjectListing { try inner.list(prefix: prefix, delimited: delimited) }
        func delete(_ key: String) throws { try inner.delete(key) }

        func get(_ key: String, range: Range<Int64>?, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
            log.withLock {
                $0.requested += Int(range?.count ?? 0)
                $0.gets += 1
                $0.peakAhead = max($0.peakAhead, $0.requested - $0.consumed)
            }
            try inner.get(key, range: range, consume)
        }
    }

    @Test("bytes equal direct ranged reads: adjacent, overlapping, gapped ranges and two objects; adjacent ones share a GET", arguments: Kind.allCases)
    func bytesEqual(_ kind: Kind) throws {
        let (inner, remove) = try ObjectStoreContractTests.store(kind, "read-ahead-bytes")
        defer { remove() }
        let a = ObjectStoreContractTests.pattern(300_000)
        let b: [UInt8] = a.reversed().map { (byte: UInt8) -> UInt8 in byte ^ 0x5a }
        try inner.put("packs/a", bytes: a)
        try inner.put("packs/b", bytes: b)
        let store = CountingStore(inner)
        let requests: [ObjectReadAhead.Request] = [
            .init(key: "packs/a", range: 0..<1000), .init(key: "packs/a", range: 1000..<50_000),  // adjacent
            .init(key: "packs/a", range: 40_000..<60_000),  // overlapping (an age segment two chunks share)
            .init(key: "packs/b", range: 5..<10), .init(key: "packs/a", range: 200_000..<300_000),
            .init(key: "packs/a", range: 70_000..<80_000),  // backwards: a GET of its own
            .init(key: "packs/b", range: 100_000..<100_000),
        ]
        let ahead = ObjectReadAhead(store: store, requests: requests, windowBytes: 150_000, gapBytes: 0)
        for request in requests {
            let expected = try ObjectStoreContractTests.read(inner, request.key, range: request.range)
            #expect(try ahead.next() == expected, "\(request)")
        }
        #expect(store.log.value.gets == 5)
    }

    @Test("the window bounds the bytes fetched ahead of a slow consumer, and the reader does fetch ahead", arguments: Kind.allCases)
    func windowBound(_ kind: Kind) throws {
        let (inner, remove) = try ObjectStoreContractTests.store(kind, "read-ahead-window")
        defer { remove() }
        let bytes = ObjectStoreContractTests.pattern(400_000)
        try inner.put("pack", bytes: bytes)
        let store = CountingStore(inner)
        // 40 ranges of 10 000 bytes, adjacent; GETs of at most 20 000 bytes, a window of 50 000.
        let requests = (0..<40).map { (i: Int) -> ObjectReadAhead.Request in
            let start = Int64(i) * 10_000
            return ObjectReadAhead.Request(key: "pack", range: start..<(start + 10_000))
        }
        let window = 50_000
        let ahead = ObjectReadAhead(store: store, requests: requests, windowBytes: window, maxRequestBytes: 20_000)
        var out: [UInt8] = []
        for (i, _) in requests.enumerated() {
            // Everything before this range is consumed; the range just
            // consumed is released by the next call, so it still counts.
            store.log.withLock { $0.consumed = max(0, i - 1) * 10_000 }
            out += try ahead.next()
            Thread.sleep(forTimeInterval: 0.01)  // the loader at work: the fetcher runs ahead meanwhile
        }
        #expect(out == bytes)
        let log = store.log.value
        #expect(log.gets == 20)
        #expect(log.peakAhead <= window + 10_000)
        #expect(log.peakAhead >= 40_000, "the reader never fetched more than the range being consumed")
        #expect(ahead.peakHeldBytes <= window)
    }

    @Test("a failed range is thrown when the consumer reaches it, not before; cancel stops the fetching")
    func failureInOrder() throws {
        let (store, remove) = try ObjectStoreContractTests.store(.s3, "read-ahead-failure")
        defer { remove() }
        try store.put("pack", bytes: ObjectStoreContractTests.pattern(1000))
        let requests: [ObjectReadAhead.Request] = [.init(key: "pack", range: 0..<100), .init(key: "missing", range: 0..<10), .init(key: "pack", range: 0..<10)]
        let ahead = ObjectReadAhead(store: store, requests: requests)
        #expect(try ahead.next().count == 100)
        let error = try #require(throws: PGVaultError.self) { try ahead.next() }
        #expect(error.isMissingObject)
        ahead.cancel()
    }
}
