import Foundation
import PGClient

/// Reads a known sequence of byte ranges of objects (a member's chunks in
/// their packs) ahead of the caller that consumes them in order: a thread of
/// its own fetches the next ranges while the caller decodes and loads the
/// current one, so a restore from S3 waits for a request's latency once, not
/// once per chunk. Adjacent ranges of one object (or ranges at most
/// `gapBytes` apart, or overlapping, as age segments shared by two chunks
/// are) go up as one ranged GET of at most `maxRequestBytes`.
///
/// **Bound:** the bytes fetched or being fetched and not yet consumed stay
/// at or below `windowBytes` (one request larger than the window, a range
/// bigger than it on its own, is fetched alone). One GET is in flight at a
/// time. Any store works: for a local folder on a cold cache the read-ahead
/// thread's reads overlap the loader's work the same way.
///
/// The caller takes the ranges with ``next()`` in the order given; a failed
/// fetch is thrown by the ``next()`` that reaches it. ``cancel()`` (or
/// dropping the reader) stops the thread after its current request.
final class ObjectReadAhead {
    struct Request: Sendable, Equatable {
        var key: String
        var range: Range<Int64>
    }

    /// 16 MiB per reader: with `--jobs 2` two loaders hold 32 MiB of it.
    static let defaultWindowBytes = 16 << 20
    /// For a local folder (``RepositoryArchive``): enough to keep the next
    /// chunks' reads going on a cold cache, little memory.
    static let localWindowBytes = 4 << 20
    static let defaultMaxRequestBytes = 4 << 20
    /// Two chunks of a member with at most this much of other members'
    /// chunks between them in a pack are fetched by one GET.
    static let defaultGapBytes = 64 << 10

    /// One GET: the requests it covers, `first..<first + count`.
    struct Group: Sendable, Equatable {
        var key: String
        var range: Range<Int64>
        var first: Int
        var count: Int
    }

    private let requests: [Request]
    private let groups: [Group]
    private let shared: Shared
    private var nextRequest = 0
    private var currentGroup = -1
    private var currentBytes: [UInt8] = []

    init(
        store: any ObjectStore, requests: [Request], windowBytes: Int = defaultWindowBytes,
        maxRequestBytes: Int = defaultMaxRequestBytes, gapBytes: Int = defaultGapBytes
    ) {
        self.requests = requests
        groups = Self.coalesce(requests, maxRequestBytes: maxRequestBytes, gapBytes: gapBytes)
        shared = Shared(windowBytes: windowBytes, groupCount: groups.count)
        guard !groups.isEmpty else { return }
        let (shared, groups, token) = (shared, groups, Cancellation.current)
        let thread = Thread {
            Cancellation.adopt(token)
            shared.run(store: store, groups: groups)
        }
        thread.name = "read-ahead"
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit { cancel() }

    /// The bytes of the next request, in the order given.
    func next() throws -> [UInt8] {
        precondition(nextRequest < requests.count, "read past the planned requests")
        let index = nextRequest
        while currentGroup < 0 || index >= groups[currentGroup].first + groups[currentGroup].count {
            currentBytes = []
            if currentGroup >= 0 { shared.release(group: currentGroup) }
            currentGroup += 1
            currentBytes = try shared.take(group: currentGroup)
        }
        nextRequest += 1
        let group = groups[currentGroup]
        let range = requests[index].range
        let start = Int(range.lowerBound - group.range.lowerBound)
        return Array(currentBytes[start..<(start + range.count)])
    }

    /// Stops fetching; bytes not taken are dropped.
    func cancel() {
        currentBytes = []
        shared.stop()
    }

    /// The peak of bytes fetched or in flight and not yet consumed (tests).
    var peakHeldBytes: Int { shared.peakHeldBytes }

    /// Consecutive requests of one object whose ranges touch, overlap or lie
    /// at most `gapBytes` apart, up to `maxRequestBytes`, as one range.
    static func coalesce(_ requests: [Request], maxRequestBytes: Int, gapBytes: Int) -> [Group] {
        var groups: [Group] = []
        for (i, request) in requests.enumerated() {
            if var last = groups.last, last.key == request.key, request.range.lowerBound >= last.range.lowerBound,
                request.range.lowerBound <= last.range.upperBound + Int64(gapBytes)
            {
                let merged = last.range.lowerBound..<max(last.range.upperBound, request.range.upperBound)
                if merged.count <= maxRequestBytes {
                    last.range = merged
                    last.count += 1
                    groups[groups.count - 1] = last
                    continue
                }
            }
            groups.append(Group(key: request.key, range: request.range, first: i, count: 1))
        }
        return groups
    }

    /// What the fetching thread and the consumer share, behind a condition
    /// (the consumer waits for a group, the fetcher for room in the window).
    private final class Shared: @unchecked Sendable {
        private let condition = NSCondition()
        private let windowBytes: Int
        private var fetched: [Int: Result<[UInt8], any Error>] = [:]
        /// Bytes of groups fetched or in flight and not released.
        private var heldBytes = 0
        private var heldSizes: [Int: Int] = [:]
        private(set) var peak = 0
        private var stopped = false

        init(windowBytes: Int, groupCount: Int) { self.windowBytes = windowBytes }

        var peakHeldBytes: Int { condition.withLock { peak } }

        func run(store: any ObjectStore, groups: [Group]) {
            for (i, group) in groups.enumerated() {
                let size = group.range.count
                condition.lock()
                while !stopped && heldBytes > 0 && heldBytes + size > windowBytes { condition.wait() }
                if stopped {
                    condition.unlock()
                    return
                }
                heldBytes += size
                heldSizes[i] = size
                peak = max(peak, heldBytes)
                condition.unlock()

                let result = Result { () throws -> [UInt8] in
                    var out: [UInt8] = []
                    out.reserveCapacity(size)
                    try store.get(group.key, range: group.range) { out.append(contentsOf: $0) }
                    return out
                }
                condition.withLock {
                    fetched[i] = result
                    condition.broadcast()
                }
                if case .failure = result { return }
            }
        }

        func take(group: Int) throws -> [UInt8] {
            condition.lock()
            defer { condition.unlock() }
            while fetched[group] == nil {
                if stopped { throw CancellationError() }
                condition.wait()
            }
            return try fetched.removeValue(forKey: group)!.get()
        }

        func release(group: Int) {
            condition.withLock {
                heldBytes -= heldSizes.removeValue(forKey: group) ?? 0
                condition.broadcast()
            }
        }

        func stop() {
            condition.withLock {
                stopped = true
                fetched = [:]
                condition.broadcast()
            }
        }
    }
}
