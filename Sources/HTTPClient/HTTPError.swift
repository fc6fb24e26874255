import CCurl

/// A request that got no complete HTTP response: libcurl's own error (its
/// code, `curl_easy_strerror` and the detail of its error buffer), or a
/// transfer stopped by the caller's abort check. An HTTP response of any
/// status is not an HTTPError: the caller reads its status and body.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// libcurl failed: no connection, a timeout, a dropped connection, a bad URL.
        case transport
        /// The abort check (cancellation) stopped the transfer.
        case aborted
        /// The response body was larger than the client collects into memory.
        case bodyTooLarge
    }

    public let kind: Kind
    /// libcurl's `CURLcode`, for `.transport`.
    public let code: Int
    /// What libcurl said, or what went wrong.
    public let message: String
    /// The method and URL, never a header (those carry the signature).
    public let request: String

    public var description: String { "\(request): \(message)" }

    /// Whether trying again may succeed: the connection failed, dropped, or
    /// stalled (timeouts), as opposed to a bad URL or an abort.
    public var isTransient: Bool {
        guard kind == .transport else { return false }
        let transient: [CURLcode] = [
            CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR,
            CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR,
            CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP3,
        ]
        return transient.contains { Int($0.rawValue) == code }
    }
}
