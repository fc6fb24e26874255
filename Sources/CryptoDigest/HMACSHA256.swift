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
