/// One header of a request or a response.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A request's method, URL and headers; the body is passed beside it
/// (``HTTPBody``), so the request itself stays a plain value.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The full URL, already percent-encoded.
    public var url: String
    public var headers: [HTTPHeader]

    public init(method: String, url: String, headers: [HTTPHeader] = []) {
        self.method = method
        self.url = url
        self.headers = headers
    }

    /// For messages: the method and the URL without its query (which may hold a signature).
    public var summary: String {
        "\(method) \(url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url)"
    }
}

/// What a request sends.
public enum HTTPBody {
    case empty
    /// Bytes in memory (a part of a multipart upload, an XML document).
    case bytes([UInt8])
    /// `length` bytes pulled by libcurl as it sends them: `read` fills the
    /// buffer and returns how many bytes it put there (0 only at the end).
    /// Memory stays bounded by libcurl's upload buffer.
    case stream(length: Int64, read: (UnsafeMutableRawBufferPointer) throws -> Int)

    var length: Int64 {
        switch self {
        case .empty: 0
        case .bytes(let bytes): Int64(bytes.count)
        case .stream(let length, _): length
        }
    }
}

/// A response's status and headers, and its body when the caller did not
/// stream it (an error document, a listing).
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of the last header `name` (case-insensitive), if any.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last { $0.name.lowercased() == lower }?.value
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}

/// Decides, when a response's head has arrived, where its body goes: a
/// function that receives the body in chunks as it arrives (streamed,
/// bounded memory), or nil to collect it into ``HTTPResponse/body``.
public typealias HTTPSink = (_ head: HTTPResponse) throws -> ((UnsafeRawBufferPointer) throws -> Void)?
