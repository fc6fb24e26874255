import CCrypto

/// HMAC-SHA-256 (RFC 2104) through libcrypto's one-shot `HMAC()`.
/// (Not named `HMAC`: that is the C function's name.)
public enum HMACSHA256 {
    public static let length = 32

    public static func authenticationCode(key: [UInt8], message: UnsafeRawBufferPointer) throws(DigestError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let done = key.withUnsafeBytes { k in
            CCrypto.HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), message.bindMemory(to: UInt8.self).baseAddress, message.count, &out, &length)
        }
        guard done != nil else {
            throw DigestError(.library, libraryMessage: drainErrorQueue(), context: "computing an HMAC-SHA-256 (HMAC)")
        }
        try requireLength(Array(out.prefix(Int(length))), HMACSHA256.length, "the HMAC-SHA-256")
        return Array(out.prefix(Int(length)))
    }

    public static func authenticationCode(key: [UInt8], message: [UInt8]) throws(DigestError) -> [UInt8] {
        try message.withBytes { raw throws(DigestError) in try authenticationCode(key: key, message: raw) }
    }

    /// Compares two codes in time that does not depend on where they differ
    /// (`CRYPTO_memcmp`), so a forger learns nothing from how long a refusal takes.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, x.count) == 0 } }
    }
}

/// HMAC-SHA-256 fed in pieces (libcrypto's `EVP_DigestSign*` with an HMAC
/// key), for a message that is not held whole: a chunk checked while it
/// decompresses. One object computes one code at a time; `finalize()` ends it
/// and makes the object ready for the next message under the same key.
/// Not Sendable: one thread feeds it.
public final class HMACSHA256Stream {
    private let ctx: OpaquePointer
    private let key: OpaquePointer
    private var open = false

    public init(key bytes: [UInt8]) throws(DigestError) {
        guard let key = bytes.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(EVP_PKEY_HMAC, nil, $0.baseAddress, $0.count) }) else {
            throw DigestError(.library, libraryMessage: drainErrorQueue(), context: "making an HMAC key (EVP_PKEY_new_raw_private_key)")
        }
        guard let ctx = EVP_MD_CTX_new() else {
            EVP_PKEY_free(key)
            throw DigestError(.allocationFailed, libraryMessage: drainErrorQueue(), context: "starting an HMAC-SHA-256 (EVP_MD_CTX_new)")
        }
        self.key = key
        self.ctx = ctx
    }

    deinit {
        EVP_MD_CTX_free(ctx)
        EVP_PKEY_free(key)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) throws(DigestError) {
        if !open {
            try evpCheck(EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, key), while: "starting an HMAC-SHA-256 (EVP_DigestSignInit)")
            open = true
        }
        guard !bytes.isEmpty else { return }
        try evpCheck(EVP_DigestSignUpdate(ctx, bytes.baseAddress, bytes.count), while: "feeding an HMAC-SHA-256 (EVP_DigestSignUpdate)")
    }

    /// The code of everything fed since the last `finalize()`.
    public func finalize() throws(DigestError) -> [UInt8] {
        if !open { try update(UnsafeRawBufferPointer(start: nil, count: 0)) }
        open = false
        var out = [UInt8](repeating: 0, count: HMACSHA256.length)
        var length = out.count
        try evpCheck(EVP_DigestSignFinal(ctx, &out, &length), while: "finishing an HMAC-SHA-256 (EVP_DigestSignFinal)")
        try requireLength(Array(out.prefix(length)), HMACSHA256.length, "the HMAC-SHA-256")
        return out
    }
}
