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
/// - `.cutResponse` forwards the request and cuts the response off midway
///   (a response shorter than 600 bytes passes whole);
/// - `.lostAnswer` forwards the request and drops the connection without
///   relaying a byte of the answer: the service acted, the client never hears;
/// - `.stall` answers nothing and keeps the connection open for `stallSeconds`.
///
/// Each connection carries one request (moto closes after each response, and
/// the proxy does too), so each request meets its own fate. The share and the
/// kinds can change while it runs (``setFaults(_:share:)``). It can also
/// refuse the requests for one path for good (``refuse(requestsContaining:status:code:message:)``),
/// hold some back (``delay(requestsContaining:seconds:)``), and keep every
/// request for the test to inspect (``record()``).
public final class TestFaultProxy: @unchecked Sendable {
    public enum Fault: Sendable, CaseIterable { case serverError, unavailable, slowDown, drop, cutResponse, lostAnswer, stall }

    public let port: UInt16
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    private let upstream: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var faults: [Fault]
    private var share: Double
    private var stopped = false
    private var counts: [String: Int] = [:]
    private var lines: [String] = []
    private var refusals: [(text: String, status: Int, code: String, message: String)] = []
    private var delays: [(text: String, seconds: Double)] = []
    private var oneShots: [(text: String, fault: Fault)] = []
    private var recording = false
    /// Deterministic mode: every `cycleEvery`th request gets the next fault of `faults` in turn.
    private var cycleEvery = 0
    private var cycleCount = 0
    private var recorded: [RecordedRequest] = []
    public let stallSeconds: UInt32

    /// A request as it reached the proxy: its head (request line and
    /// headers) and its body.
    public struct RecordedRequest: Sendable {
        public let head: String
        public let body: [UInt8]

        /// The request line: `PUT /bucket/key?partNumber=1&uploadId=... HTTP/1.1`.
        public var line: String { String(head.prefix { $0 != "\r" }) }

        /// The value of header `name` (any case), if sent.
        public func header(_ name: String) -> String? {
            let wanted = name.lowercased() + ":"
            return head.split(separator: "\r\n").first { $0.lowercased().hasPrefix(wanted) }
                .map { $0.dropFirst(wanted.count).trimmingCharacters(in: .whitespaces) }
        }
    }

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
            cycleEvery = 0
        }
    }

    /// From now on every `every`th request gets the next of `faults` in
    /// turn, the others pass: each kind surely happens once a run makes
    /// `every × faults.count` requests (a random share may miss one).
    public func cycle(_ faults: [Fault], every: Int) {
        lock.withLock {
            self.faults = faults
            cycleEvery = max(1, every)
            cycleCount = 0
        }
    }

    /// From now on, requests whose request line contains `text` are answered
    /// `status` with S3's error `code` and `message` (a 403 AccessDenied for
    /// one path), whatever the random faults say.
    public func refuse(requestsContaining text: String, status: Int, code: String, message: String) {
        lock.withLock { refusals.append((text, status, code, message)) }
    }

    /// The next request whose request line contains `text` meets `fault`
    /// (whatever the random faults say); later ones do not.
    public func inject(_ fault: Fault, intoNext text: String) {
        lock.withLock { oneShots.append((text, fault)) }
    }

    /// From now on, requests whose request line contains `text` wait
    /// `seconds` before they are forwarded (an upload kept in progress).
    public func delay(requestsContaining text: String, seconds: Double) {
        lock.withLock { delays.append((text, seconds)) }
    }

    /// Keeps every request whole from now on (``recordedRequests``).
    public func record() { lock.withLock { recording = true } }

    public var recordedRequests: [RecordedRequest] { lock.withLock { recorded } }

    /// The request lines seen so far, in order of arrival.
    public var requestLines: [String] { lock.withLock { lines } }

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
        let end = headEnd(request) ?? request.count
        let head = String(decoding: request[0..<end], as: UTF8.self)
        let line = String(head.prefix { $0 != "\r" })
        let (fault, refusal, wait): (Fault?, (text: String, status: Int, code: String, message: String)?, Double) = lock.withLock {
            lines.append(line)
            if recording { recorded.append(RecordedRequest(head: head, body: Array(request[min(end + 4, request.count)...]))) }
            if let refusal = refusals.first(where: { line.contains($0.text) }) {
                counts["refused", default: 0] += 1
                return (nil, refusal, 0)
            }
            var chosen: Fault?
            if let shot = oneShots.firstIndex(where: { line.contains($0.text) }) {
                chosen = oneShots.remove(at: shot).fault
            } else if cycleEvery > 0 {
                cycleCount += 1
                chosen = faults.isEmpty || cycleCount % cycleEvery != 0 ? nil : faults[(cycleCount / cycleEvery - 1) % faults.count]
            } else {
                chosen = !faults.isEmpty && Double.random(in: 0..<1) < share ? faults.randomElement() : nil
            }
            counts["\(chosen.map { "\($0)" } ?? "forwarded")", default: 0] += 1
            return (chosen, nil, delays.first { line.contains($0.text) }?.seconds ?? 0)
        }
        if let refusal {
            answer(client, refusal.status, "Refused", refusal.code, refusal.message)
            return
        }
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        switch fault {
        case .serverError?: answer(client, 500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again.")
        case .unavailable?: answer(client, 503, "Service Unavailable", "ServiceUnavailable", "Service is unable to handle request.")
        case .slowDown?: answer(client, 503, "Slow Down", "SlowDown", "Please reduce your request rate.")
        case .drop?: return
        case .stall?: sleep(stallSeconds)
        case .cutResponse?: forward(request, to: client, relay: 600)
        case .lostAnswer?: forward(request, to: client, relay: 0)
        case nil: forward(request, to: client, relay: nil)
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
    /// closes (or only its first `relay` bytes, then drops the connection).
    private func forward(_ request: [UInt8], to client: Int32, relay limit: Int?) {
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
            let keep = limit.map { min(n, max(0, $0 - relayed)) } ?? n
            if keep > 0 { guard TCPSockets.writeAll(client, Array(buffer[0..<keep])) else { return } }
            relayed += keep
            if let limit, keep < n || relayed >= limit { return }
        }
    }
}
