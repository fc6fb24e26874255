import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of an HTTP server (moto) that spoils a
/// share of the requests, the way a real network and a busy S3 do:
///
/// - `.serverError` answers `500 InternalError`, `.unavailable` `503
///   ServiceUnavailable`, `.slowDown` `503 SlowDown`, each with S3's XML error;
/// - `.drop` closes the connection without an answer, after reading the request;
/// - `.cutResponse` forwards the request and cuts the response off midway;
/// - `.stall` answers nothing and keeps the connection open for `stallSeconds`.
///
/// Each connection carries one request (moto closes after each response, and
/// the proxy does too), so each request meets its own fate. The share and the
/// kinds can change while it runs (``setFaults(_:share:)``).
public final class TestFaultProxy: @unchecked Sendable {
    public enum Fault: Sendable, CaseIterable { case serverError, unavailable, slowDown, drop, cutResponse, stall }

    public let port: UInt16
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    private let upstream: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var faults: [Fault]
    private var share: Double
    private var stopped = false
    private var counts: [String: Int] = [:]
    public let stallSeconds: UInt32

    /// A proxy to `upstream` (a port on 127.0.0.1) that spoils `share` (0...1) of the requests with `faults`, chosen at random.
    public init(upstream: UInt16, faults: [Fault], share: Double, stallSeconds: UInt32 = 5) throws {
        (listener, port) = try TCPSockets.listen()
        self.upstream = upstream
        self.faults = faults
        self.share = share
        self.stallSeconds = stallSeconds
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "fault-proxy"
        thread.start()
    }

    deinit { stop() }

    public func setFaults(_ faults: [Fault], share: Double) {
        lock.withLock {
            self.faults = faults
            self.share = share
        }
    }

    /// How many requests met each fate (`forwarded`, `drop`, `slowDown`, ...).
    public var tally: [String: Int] { lock.withLock { counts } }

    public func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        if first { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // stopped
            }
            let thread = Thread { [self] in serve(client) }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        guard let request = readRequest(client) else { return }
        let fault: Fault? = lock.withLock {
            let chosen = !faults.isEmpty && Double.random(in: 0..<1) < share ? faults.randomElement() : nil
            counts["\(chosen.map { "\($0)" } ?? "forwarded")", default: 0] += 1
            return chosen
        }
        switch fault {
        case .serverError?: answer(client, 500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again.")
        case .unavailable?: answer(client, 503, "Service Unavailable", "ServiceUnavailable", "Service is unable to handle request.")
        case .slowDown?: answer(client, 503, "Slow Down", "SlowDown", "Please reduce your request rate.")
        case .drop?: return
        case .stall?: sleep(stallSeconds)
        case .cutResponse?: forward(request, to: client, cut: true)
        case nil: forward(request, to: client, cut: false)
        }
    }

    /// The request's head and its `Content-Length` body, as bytes.
    private func readRequest(_ fd: Int32) -> [UInt8]? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var needed: Int?
        while needed == nil || bytes.count < needed! {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return nil }
            bytes += buffer[0..<n]
            if needed == nil, let end = headEnd(bytes) {
                let head = String(decoding: bytes[0..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                needed = end + 4 + length
            }
        }
        return bytes
    }

    private func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func answer(_ fd: Int32, _ status: Int, _ reason: String, _ code: String, _ message: String) {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>\(code)</Code><Message>\(message)</Message><RequestId>proxy</RequestId></Error>"
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/xml\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        _ = TCPSockets.writeAll(fd, Array((head + body).utf8))
    }

    /// Sends the request upstream and copies the answer back until upstream
    /// closes (or, `cut`, only part of it).
    private func forward(_ request: [UInt8], to client: Int32, cut: Bool) {
        guard let server = TCPSockets.connect(port: upstream) else { return }
        defer { close(server) }
        guard TCPSockets.writeAll(server, request) else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var relayed = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(server, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            // Cut: the head and a little of the body, then the connection drops.
            let keep = cut ? min(n, max(0, 600 - relayed)) : n
            guard TCPSockets.writeAll(client, Array(buffer[0..<keep])) else { return }
            relayed += keep
            if cut, keep < n || relayed >= 600 { return }
        }
    }
}
