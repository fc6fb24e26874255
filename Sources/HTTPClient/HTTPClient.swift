import Foundation

/// How long a request may take to connect, and to make no progress.
public struct HTTPTimeouts: Sendable {
    public var connectMilliseconds: Int
    /// A transfer that moves less than a byte a second for this long has
    /// stalled (libcurl's low-speed limit) and fails as a timeout.
    public var stallSeconds: Int

    public init(connectMilliseconds: Int = 10_000, stallSeconds: Int = 30) {
        self.connectMilliseconds = connectMilliseconds
        self.stallSeconds = stallSeconds
    }
}

/// HTTP over libcurl, shared by threads: each request takes an idle easy
/// handle from a small pool (or makes one) and gives it back afterwards,
/// so connections are reused across requests and threads, and no handle is
/// used by two threads at once.
///
/// Every call blocks its thread until the response is complete: call it from
/// a worker thread (`Blocking.run`), never on the cooperative pool.
public final class HTTPClient: @unchecked Sendable {
    public let timeouts: HTTPTimeouts
    /// Asked while a transfer runs (several times a second); true stops it
    /// with ``HTTPError/Kind/aborted`` (Ctrl-C, a cancelled task).
    public let shouldAbort: (@Sendable () -> Bool)?
    private let lock = NSLock()
    private var idle: [CurlHandle] = []
    private let maxIdle: Int

    public init(timeouts: HTTPTimeouts = HTTPTimeouts(), maxIdle: Int = 8, shouldAbort: (@Sendable () -> Bool)? = nil) {
        self.timeouts = timeouts
        self.maxIdle = maxIdle
        self.shouldAbort = shouldAbort
    }

    /// Sends `request` with `body`. The response body goes where `sink`
    /// says once the head has arrived; without a sink (or when it returns
    /// nil) it is collected into the response, up to `collectLimit` bytes.
    /// Throws ``HTTPError`` when no complete response arrived; errors thrown
    /// by the sink, the consumer or a streamed body pass through unchanged.
    public func perform(
        _ request: HTTPRequest, body: HTTPBody = .empty, collectLimit: Int = 8 << 20, sink: HTTPSink? = nil
    ) throws -> HTTPResponse {
        let handle = try take()
        do {
            let response = try handle.perform(
                request, body: body, sink: sink, collectLimit: collectLimit, timeouts: timeouts, shouldAbort: shouldAbort)
            give(handle)
            return response
        } catch let error as HTTPError where error.kind == .transport {
            // A handle whose transfer failed may hold a broken connection: drop it.
            throw error
        } catch {
            give(handle)
            throw error
        }
    }

    private func take() throws(HTTPError) -> CurlHandle {
        if let handle = lock.withLock({ idle.popLast() }) { return handle }
        return try CurlHandle()
    }

    private func give(_ handle: CurlHandle) {
        lock.withLock {
            if idle.count < maxIdle { idle.append(handle) }
        }
    }
}
