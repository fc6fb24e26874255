import CCrypto

/// An error from the libcrypto layer: what went wrong (`kind`), OpenSSL's own
/// text when the library reported it, and what we were doing (`context`).
public struct DigestError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An EVP call returned failure.
        case library
        /// An `EVP_*_new` call returned no context or key (memory is exhausted).
        case allocationFailed
        /// The digest was fed or finalized after `finalize()`, or after an
        /// earlier error left its context in an unknown state.
        case unusable
        /// ChaCha20-Poly1305 refused to open a message: its tag does not match,
        /// so the key, the nonce or the bytes are wrong (tampered or truncated).
        case authenticationFailed
        /// The caller gave a key, nonce or length of the wrong size; `context` says which.
        case invalidInput
    }

    public let kind: Kind
    /// OpenSSL's error queue as `ERR_error_string_n` gives it (oldest first),
    /// when the library left anything there.
    public let libraryMessage: String?
    /// What the layer was doing, e.g. "feeding a SHA-256 digest (EVP_DigestUpdate)".
    public let context: String

    public init(_ kind: Kind, libraryMessage: String? = nil, context: String) {
        self.kind = kind
        self.libraryMessage = libraryMessage
        self.context = context
    }

    public var description: String {
        let what: String
        switch kind {
        case .library: what = "libcrypto error"
        case .allocationFailed: what = "libcrypto could not allocate a context (out of memory)"
        case .unusable: what = "SHA2 object unusable"
        case .authenticationFailed: what = "authentication failed (wrong key, or the data was altered)"
        case .invalidInput: what = "invalid input"
        }
        // The caller's mistake is stated, not something we were doing.
        if kind == .invalidInput { return "\(what): \(context)" }
        if let libraryMessage {
            return "\(what) while \(context): \(libraryMessage)"
        }
        return "\(what) while \(context)"
    }
}

/// The single choke point for libcrypto return codes: EVP's digest calls
/// return 1 on success; anything else throws a `DigestError` carrying the
/// error queue's text.
@inline(__always)
func evpCheck(_ rc: Int32, while context: @autoclosure () -> String) throws(DigestError) {
    guard rc != 1 else { return }
    throw DigestError(.library, libraryMessage: drainErrorQueue(), context: context())
}

/// Empties this thread's OpenSSL error queue into one line: the queue is
/// per thread and would otherwise leak into the next failure's report.
func drainErrorQueue() -> String? {
    var lines: [String] = []
    var text = [CChar](repeating: 0, count: 256)
    while case let code = ERR_get_error(), code != 0 {
        ERR_error_string_n(code, &text, text.count)
        lines.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return lines.isEmpty ? nil : lines.joined(separator: "; ")
}
