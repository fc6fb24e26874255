import CryptoDigest
import Foundation
import HTTPClient

/// One object of a listing.
public struct S3ObjectSummary: Sendable, Equatable {
    public var key: String
    public var size: Int64

    public init(key: String, size: Int64) {
        self.key = key
        self.size = size
    }
}

/// One page of ListObjectsV2.
public struct S3ListPage: Sendable {
    public var objects: [S3ObjectSummary] = []
    public var prefixes: [String] = []
    /// Set when there are more: pass it to the next call.
    public var continuationToken: String?
}

extension S3Client {
    /// PUT of a whole object from memory, with its SHA-256 as the signed
    /// payload hash and as `x-amz-checksum-sha256`, so the service refuses a
    /// body that changed on the way. `ifAbsent` sends `If-None-Match: *`.
    /// Throws ``S3Error`` (``S3Error/isPreconditionFailed`` when the key was taken).
    public func putObject(_ key: String, bytes: [UInt8], ifAbsent: Bool) throws {
        let checksum = try Self.checksum(bytes)
        let (response, attempts) = try send("PUT", key: key) {
            var attempt = Attempt(body: bytes)
            // The algorithm named too, as the SDKs do: some services (moto) keep the checksum only then.
            attempt.headers = [
                HTTPHeader("Content-Type", "application/octet-stream"), HTTPHeader("x-amz-sdk-checksum-algorithm", "SHA256"),
                HTTPHeader("x-amz-checksum-sha256", checksum),
            ]
            if ifAbsent { attempt.headers.append(HTTPHeader("If-None-Match", "*")) }
            return attempt
        }
        guard response.isSuccess else {
            // A retry of a PUT whose answer was lost (the connection dropped
            // after the service stored it) finds the key taken, by itself:
            // the same SHA-256 stored there is this write, done.
            if ifAbsent, attempts > 1, response.status == 412, try storedChecksum(key) == checksum { return }
            throw failure("PUT \(name(key))", response, attempts: attempts)
        }
    }

    /// The SHA-256 checksum the service keeps for the object (base64), or
    /// nil when there is no object or it has none.
    func storedChecksum(_ key: String) throws -> String? {
        let (response, attempts) = try send("HEAD", key: key) { Attempt(headers: [HTTPHeader("x-amz-checksum-mode", "ENABLED")]) }
        if response.status == 404 { return nil }
        guard response.isSuccess else { throw failure("HEAD \(name(key))", response, attempts: attempts) }
        return response.header("x-amz-checksum-sha256")
    }

    /// Streams the object, or `range` of it, to `consume`. A connection
    /// that drops midway is resumed from the next byte (pinned to the first
    /// response's ETag, so a replaced object is never spliced). A range
    /// reaching past the end throws ``S3RangeError``; a missing object an
    /// ``S3Error`` with ``S3Error/isNotFound``.
    public func getObject(_ key: String, range: Range<Int64>?, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let range, range.isEmpty {
            guard let size = try headObject(key) else { throw notFound(key) }
            guard range.lowerBound >= 0, range.upperBound <= size else { throw S3RangeError(key: key, range: range, size: size) }
            return
        }
        var delivered: Int64 = 0
        var etag: String?
        try withoutActuallyEscaping(consume) { consume in
            let (response, attempts) = try send("GET", key: key) {
                var attempt = Attempt()
                let start = (range?.lowerBound ?? 0) + delivered
                if let range {
                    attempt.headers.append(HTTPHeader("Range", "bytes=\(start)-\(range.upperBound - 1)"))
                } else if delivered > 0 {
                    attempt.headers.append(HTTPHeader("Range", "bytes=\(start)-"))
                }
                if let etag { attempt.headers.append(HTTPHeader("If-Match", etag)) }
                attempt.sink = { head in
                    guard head.isSuccess else { return nil }
                    if let range { try Self.checkRange(head, key: key, range: range) }
                    etag = etag ?? head.header("ETag")
                    return { chunk in
                        delivered += Int64(chunk.count)
                        try consume(chunk)
                    }
                }
                return attempt
            }
            if response.status == 416, let range {
                throw S3RangeError(key: key, range: range, size: Self.actualSize(response))
            }
            guard response.isSuccess else { throw failure("GET \(name(key))", response, attempts: attempts) }
            if let range, delivered != Int64(range.count) {
                throw S3RangeError(key: key, range: range, size: range.lowerBound + delivered)
            }
        }
    }

    /// The object's size, or nil if there is none.
    public func headObject(_ key: String) throws -> Int64? {
        let (response, attempts) = try send("HEAD", key: key) { Attempt() }
        if response.status == 404 { return nil }
        guard response.isSuccess, let size = response.header("Content-Length").flatMap({ Int64($0) }) else {
            throw failure("HEAD \(name(key))", response, attempts: attempts)
        }
        return size
    }

    /// Removes the object; a missing one is no error (S3 answers 204 either way).
    public func deleteObject(_ key: String) throws {
        let (response, attempts) = try send("DELETE", key: key) { Attempt() }
        guard response.isSuccess || response.status == 404 else { throw failure("DELETE \(name(key))", response, attempts: attempts) }
    }

    /// One page of ListObjectsV2 (up to 1000 keys) under `prefix`, with
    /// `delimiter` if given. Keys come URL-encoded (`encoding-type=url`) so
    /// that any key survives XML, and are decoded here.
    public func listObjects(prefix: String, delimiter: String?, continuationToken: String?) throws -> S3ListPage {
        let (response, attempts) = try send("GET", key: nil) {
            var attempt = Attempt()
            attempt.query = [("list-type", "2"), ("prefix", prefix), ("encoding-type", "url")]
            if let delimiter { attempt.query.append(("delimiter", delimiter)) }
            if let continuationToken { attempt.query.append(("continuation-token", continuationToken)) }
            return attempt
        }
        guard response.isSuccess, let elements = S3XML.elements(response.body) else {
            throw failure("GET \(name(prefix)) (list)", response, attempts: attempts)
        }
        var page = S3ListPage()
        var key = ""
        var size: Int64 = 0
        var truncated = false
        for element in elements {
            switch element.path {
            case "ListBucketResult/Contents/Key": key = element.text.removingPercentEncoding ?? element.text
            case "ListBucketResult/Contents/Size": size = Int64(element.text) ?? 0
            case "ListBucketResult/Contents": page.objects.append(S3ObjectSummary(key: key, size: size))
            case "ListBucketResult/CommonPrefixes/Prefix": page.prefixes.append(element.text.removingPercentEncoding ?? element.text)
            case "ListBucketResult/IsTruncated": truncated = element.text == "true"
            case "ListBucketResult/NextContinuationToken": page.continuationToken = element.text
            default: break
            }
        }
        if !truncated { page.continuationToken = nil }
        return page
    }

    /// Creates the bucket (for tests and first setup); one that exists and is ours is fine.
    public func createBucket() throws {
        let (response, attempts) = try send("PUT", key: nil) { Attempt(body: []) }
        let code = S3XML.error(response.body)?.code
        guard response.isSuccess || code == "BucketAlreadyOwnedByYou" else { throw failure("PUT \(name(nil))", response, attempts: attempts) }
    }

    /// The longest a pre-signed link may live: S3 refuses `X-Amz-Expires` above 7 days.
    public static let maxPresignSeconds = 604_800

    /// A link that GETs the object without credentials for `expires` seconds
    /// (1 to ``maxPresignSeconds``; anything else throws ``S3PresignError``).
    public func presignedGetURL(_ key: String, expires: Int, date: Date = Date()) throws -> String {
        guard (1...Self.maxPresignSeconds).contains(expires) else { throw S3PresignError(seconds: expires) }
        let (host, path) = address(key)
        let request = SigV4.Request(method: "GET", path: path, headers: [HTTPHeader("host", host)], payloadHash: SigV4.unsignedPayload)
        let query = try signer.presignedQuery(for: request, expires: expires, date: date)
        return "\(configuration.scheme)://\(host)\(URIEncoding.encode(path, keepSlash: true))?"
            + query.map { "\(URIEncoding.encode($0.0))=\(URIEncoding.encode($0.1))" }.joined(separator: "&")
    }

    func notFound(_ key: String) -> S3Error {
        S3Error(operation: "GET \(name(key))", status: 404, code: "NoSuchKey", message: "The specified key does not exist.", attempts: 1)
    }

    /// A ranged response must cover the whole range: S3 answers a range that
    /// starts inside the object but ends past it with the shorter part.
    static func checkRange(_ head: HTTPResponse, key: String, range: Range<Int64>) throws {
        guard let total = head.header("Content-Range")?.split(separator: "/").last.flatMap({ Int64($0) }) else { return }
        if range.upperBound > total { throw S3RangeError(key: key, range: range, size: total) }
    }

    static func actualSize(_ response: HTTPResponse) -> Int64? {
        if let total = response.header("Content-Range")?.split(separator: "/").last.flatMap({ Int64($0) }) { return total }
        return S3XML.elements(response.body)?.first { $0.name == "ActualObjectSize" }.flatMap { Int64($0.text) }
    }

    /// `x-amz-checksum-sha256`: the base64 of the SHA-256.
    static func checksum(_ bytes: [UInt8]) throws -> String {
        let digest = try SHA2()
        try digest.update(bytes)
        return Data(try digest.finalize()).base64EncodedString()
    }
}

/// A pre-signed link asked to live longer than S3 allows (or not at all).
public struct S3PresignError: Error, CustomStringConvertible, Sendable {
    public let seconds: Int
    public init(seconds: Int) { self.seconds = seconds }
    public var description: String {
        "a pre-signed link can be valid for 1 second to 7 days (604800 s), as S3 allows; \(seconds) s was asked"
    }
}

/// A read of bytes `range` of an object that is shorter: never a short read.
public struct S3RangeError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let range: Range<Int64>
    /// The object's size, when the service said.
    public let size: Int64?
    public var description: String {
        "object '\(key)' has \(size.map { "only \($0) bytes" } ?? "fewer bytes"); bytes \(range.lowerBound)..<\(range.upperBound) were asked"
    }
}
