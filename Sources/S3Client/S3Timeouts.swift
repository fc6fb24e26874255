import HTTPClient

/// How long pgvault waits on the S3 service before an attempt counts as
/// failed (and is retried, ``S3RetryPolicy``): 10 s to connect, and
/// `PGVAULT_S3_STALL_SECONDS` (default 30) without a byte moving. A slow
/// link that still moves bytes never times out; a stalled one fails over
/// to the next attempt after that long.
public enum S3Timeouts {
    public static func resolve(environment: [String: String]) throws(S3ConfigurationError) -> HTTPTimeouts {
        guard let text = environment["PGVAULT_S3_STALL_SECONDS"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return HTTPTimeouts()
        }
        guard let seconds = Int(text), seconds >= 1 else {
            throw S3ConfigurationError("PGVAULT_S3_STALL_SECONDS is '\(text)', not a whole number of seconds of at least 1; set it so or unset it")
        }
        return HTTPTimeouts(stallSeconds: seconds)
    }
}
