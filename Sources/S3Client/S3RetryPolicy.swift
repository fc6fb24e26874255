import Foundation

/// When and how long to wait before sending a request again: after a 5xx, a
/// 429 or an S3 `SlowDown`/`RequestTimeout`, a timeout or a dropped
/// connection; never after any other 4xx (a wrong key, a missing bucket,
/// a refused signature fail at once). Exponential backoff with full jitter:
/// before attempt n+1 the wait is random in [0, min(cap, base·2ⁿ⁻¹)].
public struct S3RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double

    public init(maxAttempts: Int = 8, baseDelay: Double = 0.2, maxDelay: Double = 10) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The policy the AWS way: `AWS_MAX_ATTEMPTS` (attempts in all, as the
    /// AWS CLI and SDKs read it) when set to a whole number of at least 1;
    /// otherwise the defaults. Throws, naming the variable, when its value is unusable.
    public static func resolve(environment: [String: String]) throws(S3ConfigurationError) -> S3RetryPolicy {
        guard let text = environment["AWS_MAX_ATTEMPTS"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return S3RetryPolicy() }
        guard let attempts = Int(text), attempts >= 1 else {
            throw S3ConfigurationError("AWS_MAX_ATTEMPTS is '\(text)', not a whole number of attempts of at least 1; set it so (1 means no retry) or unset it")
        }
        return S3RetryPolicy(maxAttempts: attempts)
    }

    /// The wait after failed attempt `attempt` (1-based).
    public func delay(after attempt: Int) -> Double {
        let ceiling = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return Double.random(in: 0...max(0, ceiling))
    }

    /// Whether a response with this status and service code is worth another try.
    public static func isTransient(status: Int, code: String?) -> Bool {
        if status >= 500 || status == 429 { return true }
        return ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException"].contains(code ?? "")
    }
}
