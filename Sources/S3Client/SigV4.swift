import CryptoDigest
import Foundation
import HTTPClient

/// AWS Signature Version 4 (HMAC-SHA-256), written from AWS's description of
/// the algorithm and checked against its published test vectors
/// (Tests/S3ClientTests/sigv4-test-suite): a canonical request, the string
/// to sign, a key derived from the secret per day, region and service, and
/// the signature, sent in an `Authorization` header or, for a link that
/// works without credentials until it expires, in the query string.
public struct SigV4: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a presigned GET (S3 does not see the body when the link is made).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// What is signed: the path and query unencoded (the signer encodes
    /// them), the headers as they will be sent (with `host`).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [HTTPHeader]
        /// The hex SHA-256 of the body, or ``SigV4/unsignedPayload``.
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [HTTPHeader], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    // MARK: - Header signing

    /// The headers to add to `request` (`x-amz-date`, `x-amz-security-token`
    /// with a session token, and `Authorization`), signed at `date`.
    public func authorizationHeaders(for request: Request, date: Date) throws(DigestError) -> [HTTPHeader] {
        let stamp = Self.timestamp(date)
        var signed = request
        signed.headers.append(HTTPHeader("x-amz-date", stamp))
        if let token = credentials.sessionToken { signed.headers.append(HTTPHeader("x-amz-security-token", token)) }
        let (canonical, signedHeaders) = Self.canonicalRequest(signed)
        let signature = try self.signature(canonicalRequest: canonical, timestamp: stamp)
        let authorization =
            "\(Self.algorithm) Credential=\(credentials.accessKeyId)/\(scope(stamp)), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Array(signed.headers.dropFirst(request.headers.count)) + [HTTPHeader("Authorization", authorization)]
    }

    // MARK: - Query signing (presigned links)

    /// The query items that make `request` a presigned link valid for
    /// `expires` seconds from `date` (S3 allows up to 7 days): the request's
    /// own query plus the `X-Amz-*` items, `X-Amz-Signature` last. The
    /// signed headers are the request's (usually just `host`).
    public func presignedQuery(for request: Request, expires: Int, date: Date) throws(DigestError) -> [(String, String)] {
        let stamp = Self.timestamp(date)
        let names = Self.canonicalHeaders(request.headers).map(\.name).joined(separator: ";")
        var query = request.query
        query.append(("X-Amz-Algorithm", Self.algorithm))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyId)/\(scope(stamp))"))
        query.append(("X-Amz-Date", stamp))
        query.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        query.append(("X-Amz-SignedHeaders", names))
        var signed = request
        signed.query = query
        let (canonical, _) = Self.canonicalRequest(signed)
        query.append(("X-Amz-Signature", try signature(canonicalRequest: canonical, timestamp: stamp)))
        return query
    }

    // MARK: - The steps

    /// The canonical request and the signed header names (`host;x-amz-date`).
    public static func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        let headers = canonicalHeaders(request.headers)
        let signedHeaders = headers.map(\.name).joined(separator: ";")
        let text = [
            request.method,
            URIEncoding.encode(request.path, keepSlash: true),
            URIEncoding.canonicalQuery(request.query),
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders,
            request.payloadHash,
        ].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// Lowercase names, sorted; values trimmed with inner runs of spaces
    /// collapsed; the values of a repeated name joined by commas in order.
    static func canonicalHeaders(_ headers: [HTTPHeader]) -> [HTTPHeader] {
        var merged: [String: [String]] = [:]
        for header in headers {
            let value = header.value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[header.name.lowercased(), default: []].append(value.trimmingCharacters(in: .whitespaces))
        }
        return merged.keys.sorted().map { HTTPHeader($0, merged[$0]!.joined(separator: ",")) }
    }

    public func stringToSign(canonicalRequest: String, timestamp: String) throws(DigestError) -> String {
        let hash = try SHA2.hex(of: Array(canonicalRequest.utf8))
        return [Self.algorithm, timestamp, scope(timestamp), hash].joined(separator: "\n")
    }

    func signature(canonicalRequest: String, timestamp: String) throws(DigestError) -> String {
        let text = try stringToSign(canonicalRequest: canonicalRequest, timestamp: timestamp)
        return Hex.encode(try HMACSHA256.authenticationCode(key: try signingKey(day: String(timestamp.prefix(8))), message: Array(text.utf8)))
    }

    /// HMAC chain: the secret, then the day, region, service and `aws4_request`.
    func signingKey(day: String) throws(DigestError) -> [UInt8] {
        var key = Array("AWS4\(credentials.secretAccessKey)".utf8)
        for part in [day, region, service, "aws4_request"] {
            key = try HMACSHA256.authenticationCode(key: key, message: Array(part.utf8))
        }
        return key
    }

    func scope(_ timestamp: String) -> String { "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request" }

    /// `20150830T123600Z`.
    public static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
