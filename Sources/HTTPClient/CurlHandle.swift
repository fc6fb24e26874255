import CCurl
import Foundation

/// One libcurl easy handle, owned: `deinit` frees it exactly once. A handle
/// keeps its connections open between requests, so reusing it (through
/// ``HTTPClient``'s pool) reuses connections. Not Sendable: one thread at a
/// time runs a request on it. No C pointer leaves this file.
final class CurlHandle {
    private let curl: UnsafeMutableRawPointer
    /// libcurl writes the detail of a failure here (`CURLOPT_ERRORBUFFER`).
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init() throws(HTTPError) {
        _ = CurlHandle.globalInit
        guard let curl = curl_easy_init() else {
            throw HTTPError(kind: .transport, code: Int(CURLE_FAILED_INIT.rawValue), message: "libcurl could not start a handle (curl_easy_init)", request: "")
        }
        self.curl = curl
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(curl)
        errorBuffer.deallocate()
    }

    /// Once per process, before any handle: libcurl's global state (OpenSSL's too).
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Runs `request`. Blocks the calling thread until the response has
    /// been received whole (or the transfer failed): call it from a worker
    /// thread (`Blocking.run`), never on the cooperative pool.
    ///
    /// Throws ``HTTPError`` when no complete response arrived, or the error
    /// the sink, the consumer or the body's reader threw, unchanged.
    func perform(
        _ request: HTTPRequest, body: HTTPBody, sink: HTTPSink?, collectLimit: Int,
        timeouts: HTTPTimeouts, shouldAbort: (@Sendable () -> Bool)?
    ) throws -> HTTPResponse {
        let transfer = CurlTransfer(body: body, sink: sink, collectLimit: collectLimit, shouldAbort: shouldAbort)
        // Everything set per request; reset keeps the open connections and caches.
        curl_easy_reset(curl)
        errorBuffer[0] = 0
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        // Expect: 100-continue costs a round trip per part and some servers mishandle it.
        for header in request.headers + [HTTPHeader("Expect", "")] {
            guard let next = curl_slist_append(headerList, "\(header.name):\(header.value.isEmpty ? "" : " " + header.value)") else {
                throw failure(CURLE_OUT_OF_MEMORY, request)
            }
            headerList = next
        }

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        try withExtendedLifetime(transfer) {
            try check(pgv_curl_setopt_string(curl, CURLOPT_URL, request.url), request)
            try check(pgv_curl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorBuffer), request)
            try check(pgv_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList), request)
            // Threads: no signals (libcurl's DNS timeout would use SIGALRM).
            try check(pgv_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1), request)
            try check(pgv_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, timeouts.connectMilliseconds), request)
            // A transfer slower than 1 byte/s for this long has stalled: CURLE_OPERATION_TIMEDOUT.
            try check(pgv_curl_setopt_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1), request)
            try check(pgv_curl_setopt_long(curl, CURLOPT_LOW_SPEED_TIME, timeouts.stallSeconds), request)
            try check(pgv_curl_setopt_long(curl, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)), request)
            try check(pgv_curl_setopt_long(curl, CURLOPT_TCP_KEEPALIVE, 1), request)

            try check(pgv_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, context), request)
            try check(pgv_curl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, curlHeader), request)
            try check(pgv_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, context), request)
            try check(pgv_curl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, curlWrite), request)
            try check(pgv_curl_setopt_pointer(curl, CURLOPT_XFERINFODATA, context), request)
            try check(pgv_curl_setopt_xferinfo(curl, curlProgress), request)
            try check(pgv_curl_setopt_long(curl, CURLOPT_NOPROGRESS, 0), request)

            switch request.method {
            case "GET":
                break
            case "HEAD":
                try check(pgv_curl_setopt_long(curl, CURLOPT_NOBODY, 1), request)
            default:
                try check(pgv_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method), request)
            }
            // PUT and POST always send a body (maybe empty, with Content-Length: 0).
            if request.method == "PUT" || request.method == "POST" {
                try check(pgv_curl_setopt_long(curl, CURLOPT_UPLOAD, 1), request)
                try check(pgv_curl_setopt_off(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.length)), request)
                try check(pgv_curl_setopt_pointer(curl, CURLOPT_READDATA, context), request)
                try check(pgv_curl_setopt_data_callback(curl, CURLOPT_READFUNCTION, curlRead), request)
            }

            let code = curl_easy_perform(curl)
            if let error = transfer.callerError { throw error }
            if transfer.aborted {
                throw HTTPError(kind: .aborted, code: Int(code.rawValue), message: "stopped (cancelled)", request: request.summary)
            }
            if transfer.bodyTooLarge {
                throw HTTPError(
                    kind: .bodyTooLarge, code: Int(code.rawValue),
                    message: "the response body is larger than \(collectLimit) bytes", request: request.summary)
            }
            try check(code, request)
            // A response without a body still reaches the sink (it may check the head).
            try transfer.deliverHead()
        }
        return transfer.response
    }

    private func check(_ code: CURLcode, _ request: HTTPRequest) throws(HTTPError) {
        guard code != CURLE_OK else { return }
        throw failure(code, request)
    }

    private func failure(_ code: CURLcode, _ request: HTTPRequest) -> HTTPError {
        let detail = String(cString: errorBuffer)
        let text = String(cString: curl_easy_strerror(code))
        return HTTPError(
            kind: .transport, code: Int(code.rawValue),
            message: detail.isEmpty || detail == text ? text : "\(text) (\(detail))", request: request.summary)
    }
}

/// The header callback: one header line per call.
private let curlHeader: curl_write_callback = { data, size, count, context in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    transfer.header(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

/// The write callback: body bytes. Returning fewer bytes than given stops the transfer.
private let curlWrite: curl_write_callback = { data, size, count, context in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    return transfer.receive(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : 0
}

/// The read callback: fills libcurl's buffer with the request body.
private let curlRead: curl_write_callback = { data, size, count, context in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    guard let n = transfer.send(into: UnsafeMutableRawBufferPointer(start: data, count: size * count)) else {
        return Int(CURL_READFUNC_ABORT)
    }
    return n
}

/// The progress callback: a nonzero return aborts (cancellation).
private let curlProgress: curl_xferinfo_callback = { context, _, _, _, _ in
    Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue().shouldStop() ? 1 : 0
}
