import Foundation
import HTTPClient
import PGClient
import S3Client

/// An ``ObjectStore`` in an S3 bucket (AWS, or a compatible service: MinIO,
/// Ceph RGW, R2, B2), under a key prefix: the object `a/b` of the store
/// `s3://bucket/backups/` is the S3 key `backups/a/b`. A write is a single
/// PUT when it fits one part, else a multipart upload whose parts go up in
/// parallel (``S3ObjectWriter``); every upload carries its SHA-256
/// (docs/storage.md, "S3"). Requests are retried after transient failures
/// (``S3RetryPolicy``); a refusal fails at once with the service's code and
/// what to check. Every call blocks its thread.
public struct S3ObjectStore: ObjectStore {
    public let client: S3Client
    /// "" or a prefix ending in `/`.
    public let prefix: String
    /// Bytes per part of a multipart upload (S3's minimum is 5 MiB).
    public let partSize: Int
    /// Parts uploading at once, per writer; with the part being filled, a
    /// writer holds at most `partSize × (partsInFlight + 1)` bytes.
    public let partsInFlight: Int

    /// S3's minimum: with two writers (`--jobs 2`) at 15 MiB each, a backup
    /// stays within its 96 MB (docs/storage.md, "the memory bound").
    public static let defaultPartSize = 5 << 20
    public static let defaultPartsInFlight = 2

    public init(client: S3Client, prefix: String, partSize: Int = defaultPartSize, partsInFlight: Int = defaultPartsInFlight) {
        self.client = client
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.partSize = max(partSize, 5 << 20)
        self.partsInFlight = max(1, partsInFlight)
    }

    /// The store of `url` (`s3://BUCKET[/PREFIX]`), configured the AWS way
    /// (``S3Configuration/resolve(environment:endpoint:)``, `AWS_MAX_ATTEMPTS`,
    /// `PGVAULT_S3_STALL_SECONDS`); `endpoint` is `--s3-endpoint`.
    public static func open(
        _ url: String, endpoint: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
        retry: S3RetryPolicy? = nil
    ) throws -> S3ObjectStore {
        let (bucket, prefix) = try parse(url)
        let configuration: S3Configuration
        let policy: S3RetryPolicy
        let timeouts: HTTPTimeouts
        do {
            configuration = try S3Configuration.resolve(environment: environment, endpoint: endpoint)
            if let retry { policy = retry } else { policy = try S3RetryPolicy.resolve(environment: environment) }
            timeouts = try S3Timeouts.resolve(environment: environment)
        } catch {
            throw PGVaultError.usage("cannot use '\(url)': \(error.message)")
        }
        let http = HTTPClient(timeouts: timeouts, shouldAbort: { Cancellation.isCancelled })
        return S3ObjectStore(client: S3Client(configuration: configuration, bucket: bucket, retry: policy, http: http), prefix: prefix)
    }

    /// `s3://BUCKET[/PREFIX]` into the bucket and the prefix (ending in `/`, or empty).
    public static func parse(_ url: String) throws -> (bucket: String, prefix: String) {
        guard url.hasPrefix("s3://") else { throw PGVaultError.usage("'\(url)' is not an s3://BUCKET/PREFIX location") }
        let rest = url.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        var prefix = String(rest.dropFirst(bucket.count + 1))
        let valid = (3...63).contains(bucket.count)
            && bucket.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }
            && bucket.first != "-" && bucket.first != "." && bucket.last != "-" && bucket.last != "."
        guard valid else {
            throw PGVaultError.usage(
                "'\(bucket)' in '\(url)' is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' and '.'); give s3://BUCKET/PREFIX")
        }
        if !prefix.isEmpty {
            if !prefix.hasSuffix("/") { prefix += "/" }
            do { try ObjectKey.validate(String(prefix.dropLast())) } catch {
                throw PGVaultError.usage("the prefix '\(prefix)' in '\(url)' is not usable: \(error)")
            }
        }
        return (bucket, prefix)
    }

    /// `s3://BUCKET/PREFIX` as `--repo` names it (no trailing `/`: callers
    /// add `/` and a key, as for a folder).
    public var location: String { "s3://\(client.bucket)" + (prefix.isEmpty ? "" : "/" + prefix.dropLast()) }

    public func writer(for key: String, ifAbsent: Bool) throws -> any ObjectWriter {
        try ObjectKey.validate(key)
        return S3ObjectWriter(store: self, key: key, ifAbsent: ifAbsent)
    }

    public func get(_ key: String, range: Range<Int64>?, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        try ObjectKey.validate(key)
        try translating(key, "read") { try client.getObject(prefix + key, range: range, consume) }
    }

    public func head(_ key: String) throws -> ObjectInfo? {
        try ObjectKey.validate(key)
        return try translating(key, "read") { try client.headObject(prefix + key).map { ObjectInfo(key: key, size: $0) } }
    }

    public func list(prefix listed: String, delimited: Bool) throws -> ObjectListing {
        var listing = ObjectListing(objects: [])
        var token: String?
        try translating(listed, "list") {
            repeat {
                let page = try client.listObjects(prefix: prefix + listed, delimiter: delimited ? "/" : nil, continuationToken: token)
                listing.objects += page.objects.map { ObjectInfo(key: String($0.key.dropFirst(prefix.count)), size: $0.size) }
                listing.prefixes += page.prefixes.map { String($0.dropFirst(prefix.count)) }
                token = page.continuationToken
            } while token != nil
        }
        // Keys that are no object key of ours (written by someone else) are left out, as the local folder leaves out its temporary files.
        listing.objects = listing.objects.filter { (try? ObjectKey.validate($0.key)) != nil }.sorted { $0.key < $1.key }
        listing.prefixes.sort()
        return listing
    }

    public func delete(_ key: String) throws {
        try ObjectKey.validate(key)
        try translating(key, "delete") { try client.deleteObject(prefix + key) }
    }

    /// Runs `body`, turning the S3 layer's errors into ``PGVaultError``s that
    /// name the key and the store; the caller's own errors pass through.
    func translating<T>(_ key: String, _ doing: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as S3Error {
            if error.isNotFound, doing == "read" {
                throw PGVaultError(.archive, "no object '\(key)' in '\(location)'", underlying: MissingObjectError(key: key))
            }
            if error.isPreconditionFailed {
                throw PGVaultError(.io, "object '\(key)' already exists in '\(location)'; it is never overwritten", underlying: ObjectExistsError(key: key))
            }
            throw PGVaultError(.io, "cannot \(doing) object '\(key)' in '\(location)' at \(client.configuration.endpoint)", underlying: error)
        } catch let error as S3RangeError {
            throw PGVaultError(
                .archive,
                "object '\(key)' in '\(location)' is \(error.size.map { "\($0) bytes" } ?? "shorter"), so bytes \(error.range.lowerBound)..<\(error.range.upperBound) of it cannot be read: it is shorter than its writer recorded (truncated or replaced)",
                underlying: error)
        } catch let error as HTTPError where error.kind == .aborted {
            throw PGVaultError(.interrupted, "cancelled", underlying: error)
        } catch let error as HTTPError {
            throw PGVaultError(.io, "cannot \(doing) object '\(key)' in '\(location)'", underlying: error)
        }
    }
}
