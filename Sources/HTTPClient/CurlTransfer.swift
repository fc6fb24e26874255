import CCurl

/// The state of one request while libcurl runs it, reached from libcurl's
/// callbacks through their user-data pointer. It lives on the stack of
/// ``CurlHandle/perform(_:body:sink:collectLimit:shouldAbort:)`` for the
/// duration of `curl_easy_perform`, so the pointer never outlives it.
final class CurlTransfer {
    let body: HTTPBody
    let sink: HTTPSink?
    let collectLimit: Int
    let shouldAbort: (@Sendable () -> Bool)?

    var status = 0
    var headers: [HTTPHeader] = []
    var collected: [UInt8] = []
    var bodyTooLarge = false
    /// The consumer chosen by the sink, once the head has arrived.
    var consumer: ((UnsafeRawBufferPointer) throws -> Void)?
    var headDelivered = false
    /// An error thrown by the sink, the consumer or the body's reader: it
    /// stops the transfer and is rethrown unchanged after it.
    var callerError: (any Error)?
    var aborted = false
    private var sent = 0

    init(body: HTTPBody, sink: HTTPSink?, collectLimit: Int, shouldAbort: (@Sendable () -> Bool)?) {
        self.body = body
        self.sink = sink
        self.collectLimit = collectLimit
        self.shouldAbort = shouldAbort
    }

    var response: HTTPResponse { HTTPResponse(status: status, headers: headers, body: collected) }

    /// One header line; a status line starts a new head (after a
    /// `100 Continue`, the final response's head replaces it).
    func header(_ line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("HTTP/") {
            let fields = text.split(separator: " ", maxSplits: 2)
            status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
            headers = []
        } else if let colon = text.firstIndex(of: ":") {
            let name = String(text[..<colon])
            let value = String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            headers.append(HTTPHeader(name, value))
        }
    }

    /// Hands the head to the sink, once, before the first body byte (or at
    /// the end, for a response without a body).
    func deliverHead() throws {
        guard !headDelivered else { return }
        headDelivered = true
        consumer = try sink?(response)
    }

    /// Body bytes: to the consumer, or collected. Returns false to stop the transfer.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            try deliverHead()
            if let consumer {
                try consumer(bytes)
            } else {
                guard collected.count + bytes.count <= collectLimit else {
                    bodyTooLarge = true
                    return false
                }
                collected.append(contentsOf: bytes)
            }
            return true
        } catch {
            callerError = error
            return false
        }
    }

    /// Fills `buffer` with the next bytes of the request body; nil stops the transfer.
    func send(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        switch body {
        case .empty:
            return 0
        case .bytes(let bytes):
            let n = min(buffer.count, bytes.count - sent)
            guard n > 0 else { return 0 }
            bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + sent, byteCount: n)
            }
            sent += n
            return n
        case .stream(_, let read):
            do {
                return try read(buffer)
            } catch {
                callerError = error
                return nil
            }
        }
    }

    /// Asked by libcurl's progress callback: whether to stop now.
    func shouldStop() -> Bool {
        if shouldAbort?() == true {
            aborted = true
            return true
        }
        return false
    }
}
