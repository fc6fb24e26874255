/// A request the S3 service refused, or could not be reached for: the
/// service's own `Code` and `Message` (or libcurl's text), the status, and
/// what to check. It names the bucket, key and endpoint, never a secret.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    /// `PUT s3://bucket/key`.
    public let operation: String
    /// The HTTP status; 0 when no response arrived.
    public let status: Int
    /// The service's error code (`NoSuchKey`, `SignatureDoesNotMatch`, `SlowDown`), if it sent one.
    public let code: String?
    /// The service's message, or libcurl's when there was no response.
    public let message: String
    public let requestId: String?
    /// How many times the request was sent.
    public let attempts: Int
    /// What the operator should check, for the errors that say.
    public let hint: String?

    public init(operation: String, status: Int, code: String?, message: String, requestId: String? = nil, attempts: Int, hint: String? = nil) {
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        self.requestId = requestId
        self.attempts = attempts
        self.hint = hint
    }

    public var description: String {
        var text = operation + ": "
        if status == 0 {
            text += message
        } else {
            text += "\(code ?? "HTTP \(status)")\(code == nil ? "" : " (HTTP \(status))")"
            if !message.isEmpty { text += ": \(message)" }
        }
        if attempts > 1 { text += " (after \(attempts) attempts)" }
        if let hint { text += "; \(hint)" }
        return text
    }

    public var isNotFound: Bool { status == 404 && code != "NoSuchBucket" && code != "NoSuchUpload" }
    /// `If-None-Match: *` found the key taken.
    public var isPreconditionFailed: Bool { status == 412 }
}
