import CZstd

/// An error from the zstd layer: what went wrong (`kind`), zstd's own error
/// name when the library reported it, and what we were doing (`context`).
public struct ZstdError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// libzstd returned an error code not covered by a more specific kind.
        case library
        /// A frame's content checksum did not match its data: the stream is corrupted.
        case checksumMismatch
        /// A frame asked for a window larger than the decompressor allows.
        case windowTooLarge
        /// The input ended in the middle of a frame.
        case truncated
        /// `finish()` was called without any input at all.
        case emptyInput
        /// The decompressed output grew past the configured `maxOutputBytes`.
        case outputLimitExceeded(limit: UInt64)
        /// An argument was out of range (for example the compression level).
        case invalidArgument
        /// A context could not be allocated.
        case allocationFailed
        /// The object was used after an earlier error left its stream in an unknown state.
        case unusable
    }

    public let kind: Kind
    /// `ZSTD_getErrorName` text, when the error came from libzstd.
    public let libraryMessage: String?
    /// What the layer was doing, e.g. "decompressing (input byte offset 1234)".
    public let context: String

    public init(_ kind: Kind, libraryMessage: String? = nil, context: String) {
        self.kind = kind
        self.libraryMessage = libraryMessage
        self.context = context
    }

    public var description: String {
        let what: String
        switch kind {
        case .library: what = "zstd error"
        case .checksumMismatch: what = "zstd content checksum mismatch: the compressed data is corrupted"
        case .windowTooLarge:
            what = "zstd frame needs a larger window than this decoder allows (ZSTD_d_windowLogMax); "
                + "refusing to allocate that much memory for a possibly hostile stream"
        case .truncated: what = "truncated zstd stream (frame incomplete)"
        case .emptyInput: what = "empty zstd stream (no frame at all)"
        case .outputLimitExceeded(let limit):
            what = "decompressed size exceeds limit \(limit) — possible decompression bomb"
        case .invalidArgument: what = "invalid zstd argument"
        case .allocationFailed: what = "zstd could not allocate a context"
        case .unusable: what = "zstd stream unusable after an earlier error (call reset())"
        }
        if let libraryMessage {
            return "\(what) while \(context): \(libraryMessage)"
        }
        return "\(what) while \(context)"
    }
}

/// The single choke point for libzstd return codes: returns `rc` when it is
/// not an error, otherwise throws a `ZstdError` carrying `ZSTD_getErrorName`.
@discardableResult
func zstdCheck(_ rc: Int, while context: @autoclosure () -> String) throws(ZstdError) -> Int {
    guard ZSTD_isError(rc) != 0 else { return rc }
    let kind: ZstdError.Kind
    switch ZSTD_getErrorCode(rc) {
    case ZSTD_error_checksum_wrong: kind = .checksumMismatch
    case ZSTD_error_frameParameter_windowTooLarge: kind = .windowTooLarge
    case ZSTD_error_memory_allocation: kind = .allocationFailed
    case ZSTD_error_parameter_outOfBound: kind = .invalidArgument
    default: kind = .library
    }
    let name = ZSTD_getErrorName(rc).map { String(cString: $0) } ?? "unknown zstd error \(rc)"
    throw ZstdError(kind, libraryMessage: name, context: context())
}
