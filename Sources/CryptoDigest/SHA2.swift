import CCrypto

/// SHA-2 digests through OpenSSL's libcrypto (EVP), streaming: feed any number
/// of chunks, then take the digest once. Every EVP return code goes through
/// `evpCheck`, so a failure throws a `DigestError` with OpenSSL's text.
///
/// One object digests one input: after `finalize()` (or a failed call) feeding
/// or finalizing again throws `.unusable` rather than silently starting over.
/// Not Sendable: one thread feeds one digest.
public final class SHA2 {
    public enum Algorithm: Sendable, CustomStringConvertible {
        case sha256, sha384

        fileprivate var md: OpaquePointer? { self == .sha256 ? EVP_sha256() : EVP_sha384() }

        public var description: String { self == .sha256 ? "SHA-256" : "SHA-384" }
    }

    private enum State { case open, finished, failed }

    /// Owned `EVP_MD_CTX*`; freed exactly once in `deinit`.
    private let ctx: OpaquePointer
    private var state = State.open
    public let algorithm: Algorithm

    public init(_ algorithm: Algorithm = .sha256) throws(DigestError) {
        guard let ctx = EVP_MD_CTX_new() else {
            throw DigestError(.allocationFailed, libraryMessage: drainErrorQueue(), context: "starting a \(algorithm) digest")
        }
        self.ctx = ctx
        self.algorithm = algorithm
        // Fully initialized: from here on a throw still runs deinit, which frees the context.
        try guarding { () throws(DigestError) in
            try evpCheck(EVP_DigestInit_ex(ctx, algorithm.md, nil), while: "starting a \(algorithm) digest (EVP_DigestInit_ex)")
        }
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) throws(DigestError) {
        try ensureOpen("feeding")
        guard !bytes.isEmpty else { return }
        try guarding { () throws(DigestError) in
            try evpCheck(
                EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count),
                while: "feeding a \(algorithm) digest (EVP_DigestUpdate)")
        }
    }

    // The standard library's `with...` functions rethrow untyped errors, so
    // these carry the `DigestError` out in a `Result`.
    public func update(_ bytes: [UInt8]) throws(DigestError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(DigestError) in try update(raw) } }.get()
    }

    public func update(_ text: String) throws(DigestError) {
        var text = text
        try text.withUTF8 { utf8 in Result { () throws(DigestError) in try update(UnsafeRawBufferPointer(utf8)) } }.get()
    }

    /// The digest of everything fed so far; the object cannot be used afterwards.
    public func finalize() throws(DigestError) -> [UInt8] {
        try ensureOpen("finalizing")
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        try guarding { () throws(DigestError) in
            try evpCheck(
                EVP_DigestFinal_ex(ctx, &out, &length), while: "finalizing a \(algorithm) digest (EVP_DigestFinal_ex)")
        }
        state = .finished
        return Array(out.prefix(Int(length)))
    }

    /// ``finalize()`` in lowercase hex.
    public func hexDigest() throws(DigestError) -> String { Hex.encode(try finalize()) }

    /// The lowercase hex digest of `bytes`.
    public static func hex(_ algorithm: Algorithm = .sha256, of bytes: [UInt8]) throws(DigestError) -> String {
        let digest = try SHA2(algorithm)
        try digest.update(bytes)
        return try digest.hexDigest()
    }

    private func ensureOpen(_ doing: String) throws(DigestError) {
        guard state == .open else {
            let why = state == .finished ? "after it was finalized" : "after an earlier call failed"
            throw DigestError(.unusable, context: "\(doing) a \(algorithm) digest \(why) (use a new SHA2 for each input)")
        }
    }

    /// Runs one EVP step; a failure leaves the context in an unknown state, so
    /// the object refuses any further use.
    private func guarding(_ step: () throws(DigestError) -> Void) throws(DigestError) {
        do {
            try step()
        } catch {
            state = .failed
            throw error
        }
    }
}
