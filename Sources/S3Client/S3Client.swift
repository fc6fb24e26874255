import CryptoDigest
import Foundation
import HTTPClient

/// S3's REST protocol for one bucket, over ``HTTPClient``: each request is
/// signed (SigV4, a fresh signature per attempt) and sent again after a
/// transient failure (``S3RetryPolicy``). Shared by threads; every call
/// blocks its thread: call it from a worker thread (`Blocking.run`).
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    public let bucket: String
    public let retry: S3RetryPolicy
    let http: HTTPClient
    let signer: SigV4

    public init(configuration: S3Configuration, bucket: String, retry: S3RetryPolicy = S3RetryPolicy(), http: HTTPClient = HTTPClient()) {
        self.configuration = configuration
        self.bucket = bucket
        self.retry = retry
        self.http = http
        signer = SigV4(credentials: configuration.credentials, region: configuration.region)
    }

    /// One attempt's request, made afresh for each attempt (a resumed GET asks for a later range).
    struct Attempt {
        var query: [(String, String)] = []
        var headers: [HTTPHeader] = []
        var body: [UInt8]? = nil
        var sink: HTTPSink? = nil
    }

    /// `s3://bucket/key`, for messages.
    public func name(_ key: String?) -> String { "s3://\(bucket)/\(key ?? "")" }

    /// The host and the path (unencoded) of `key` (nil: the bucket itself).
    func address(_ key: String?) -> (host: String, path: String) {
        let port = configuration.port.map { ":\($0)" } ?? ""
        switch configuration.addressing {
        case .path: return (configuration.host + port, "/\(bucket)" + (key.map { "/" + $0 } ?? ""))
        case .virtual: return ("\(bucket).\(configuration.host)\(port)", "/" + (key ?? ""))
        }
    }

    /// Sends a request, again after transient failures, and returns the
    /// last response: a success, or a refusal the caller reads with
    /// ``failure(_:_:_:attempts:)``. Throws ``S3Error`` when no response
    /// came after the last attempt; errors of the sink pass through.
    func send(_ method: String, key: String?, _ makeAttempt: () throws -> Attempt) throws -> (HTTPResponse, attempts: Int) {
        let operation = "\(method) \(name(key))"
        var attempt = 0
        while true {
            attempt += 1
            let prepared = try makeAttempt()
            let request = try sign(method, key: key, prepared)
            let transient: S3Error
            do {
                let body: HTTPBody = prepared.body.map { .bytes($0) } ?? .empty
                let response = try http.perform(request, body: body, sink: prepared.sink)
                let error = S3XML.error(response.body)
                // CompleteMultipartUpload can answer 200 with an error document.
                let failed = !response.isSuccess || (method == "POST" && error != nil)
                guard failed, S3RetryPolicy.isTransient(status: response.status, code: error?.code) || error?.code == "InternalError" else {
                    return (response, attempt)
                }
                transient = failure(operation, response, attempts: attempt)
            } catch let error as HTTPError where error.isTransient {
                transient = S3Error(
                    operation: operation, status: 0, code: nil, message: error.message, attempts: attempt,
                    hint: "check the endpoint \(configuration.endpoint) and the network")
            } catch let error as HTTPError {
                throw S3Error(operation: operation, status: 0, code: nil, message: error.message, attempts: attempt)
            }
            guard attempt < retry.maxAttempts else { throw transient }
            Thread.sleep(forTimeInterval: retry.delay(after: attempt))
        }
    }

    /// The URL, the `Host`, the payload hash and the signature.
    private func sign(_ method: String, key: String?, _ attempt: Attempt) throws -> HTTPRequest {
        let (host, path) = address(key)
        let payloadHash = try attempt.body.map { try SHA2.hex(of: $0) } ?? SigV4.emptyPayloadHash
        var headers = attempt.headers
        headers.append(HTTPHeader("Host", host))
        headers.append(HTTPHeader("x-amz-content-sha256", payloadHash))
        let request = SigV4.Request(method: method, path: path, query: attempt.query, headers: headers, payloadHash: payloadHash)
        headers += try signer.authorizationHeaders(for: request, date: Date())
        var url = "\(configuration.scheme)://\(host)\(URIEncoding.encode(path, keepSlash: true))"
        if !attempt.query.isEmpty { url += "?" + URIEncoding.canonicalQuery(attempt.query) }
        return HTTPRequest(method: method, url: url, headers: headers)
    }

    /// The refusal in `response` as an ``S3Error``, with what to check.
    func failure(_ operation: String, _ response: HTTPResponse, attempts: Int) -> S3Error {
        let parsed = S3XML.error(response.body)
        let code = parsed?.code ?? Self.defaultCode(response.status)
        return S3Error(
            operation: operation, status: response.status, code: code, message: parsed?.message ?? "",
            requestId: parsed?.requestId ?? response.header("x-amz-request-id"), attempts: attempts, hint: hint(code, status: response.status))
    }

    /// A HEAD response has no body: the code its status stands for.
    private static func defaultCode(_ status: Int) -> String? {
        switch status {
        case 403: "Forbidden"
        case 404: "NotFound"
        default: nil
        }
    }

    private func hint(_ code: String?, status: Int) -> String? {
        let credentials = configuration.credentials
        switch code {
        case "SignatureDoesNotMatch":
            return "the secret access key of \(credentials) does not match its key id; check those credentials, and that this machine's clock is right"
        case "InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "TokenRefreshRequired":
            return "\(configuration.endpoint) does not accept \(credentials); check the credentials and the endpoint"
        case "RequestTimeTooSkewed":
            return "this machine's clock is off; set it right (NTP)"
        case "AccessDenied", "Forbidden", "AllAccessDisabled":
            return "\(credentials) may not do this on bucket '\(bucket)'; check the bucket's and the key's policy (and the credentials)"
        case "NoSuchBucket":
            return "there is no bucket '\(bucket)' at \(configuration.endpoint) (region \(configuration.region)); check the bucket name, the endpoint and the region"
        case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
            return "bucket '\(bucket)' is not in region \(configuration.region) or not at \(configuration.endpoint); set AWS_REGION (or the endpoint) to the bucket's"
        default:
            return status >= 500 || status == 429 ? "the service kept failing; try again later" : nil
        }
    }
}
