import CCrypto

/// X25519 (RFC 7748) through libcrypto's `EVP_PKEY_X25519`: key generation,
/// the public key of a private key, and the shared secret of two keys.
/// Keys are raw 32-byte strings, as age and RFC 7748 write them; every
/// `EVP_PKEY` and `EVP_PKEY_CTX` lives only inside one call.
public enum X25519 {
    public static let keyLength = 32

    /// A new private key from libcrypto's CSPRNG (`EVP_PKEY_keygen`).
    public static func generatePrivateKey() throws(DigestError) -> [UInt8] {
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nil) else {
            throw DigestError(.allocationFailed, libraryMessage: drainErrorQueue(), context: "generating an X25519 key (EVP_PKEY_CTX_new_id)")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        try evpCheck(EVP_PKEY_keygen_init(ctx), while: "generating an X25519 key (EVP_PKEY_keygen_init)")
        var key: OpaquePointer?
        try evpCheck(EVP_PKEY_keygen(ctx, &key), while: "generating an X25519 key (EVP_PKEY_keygen)")
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        try evpCheck(EVP_PKEY_get_raw_private_key(key, &out, &length), while: "reading a new X25519 key (EVP_PKEY_get_raw_private_key)")
        try requireLength(Array(out.prefix(length)), keyLength, "the generated X25519 private key")
        return out
    }

    /// `X25519(privateKey, basepoint)`: the public key that goes with `privateKey`.
    public static func publicKey(fromPrivateKey privateKey: [UInt8]) throws(DigestError) -> [UInt8] {
        let key = try privateKeyObject(privateKey)
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        try evpCheck(EVP_PKEY_get_raw_public_key(key, &out, &length), while: "computing an X25519 public key (EVP_PKEY_get_raw_public_key)")
        try requireLength(Array(out.prefix(length)), keyLength, "the X25519 public key")
        return out
    }

    /// `X25519(privateKey, peerPublicKey)` (`EVP_PKEY_derive`). libcrypto
    /// refuses a peer key of low order (the result would be all zeros), and
    /// so does this function: RFC 7748 §6.1 says to check, age says to abort.
    public static func sharedSecret(privateKey: [UInt8], peerPublicKey: [UInt8]) throws(DigestError) -> [UInt8] {
        try requireLength(peerPublicKey, keyLength, "an X25519 peer public key")
        let key = try privateKeyObject(privateKey)
        defer { EVP_PKEY_free(key) }
        let peer = try peerPublicKey.withBytes { raw throws(DigestError) in
            guard let peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, raw.bindMemory(to: UInt8.self).baseAddress, raw.count) else {
                throw DigestError(.library, libraryMessage: drainErrorQueue(), context: "loading an X25519 public key (EVP_PKEY_new_raw_public_key)")
            }
            return peer
        }
        defer { EVP_PKEY_free(peer) }
        guard let ctx = EVP_PKEY_CTX_new(key, nil) else {
            throw DigestError(.allocationFailed, libraryMessage: drainErrorQueue(), context: "deriving an X25519 shared secret (EVP_PKEY_CTX_new)")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        try evpCheck(EVP_PKEY_derive_init(ctx), while: "deriving an X25519 shared secret (EVP_PKEY_derive_init)")
        try evpCheck(EVP_PKEY_derive_set_peer(ctx, peer), while: "deriving an X25519 shared secret (EVP_PKEY_derive_set_peer)")
        var out = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        try evpCheck(EVP_PKEY_derive(ctx, &out, &length), while: "deriving an X25519 shared secret (EVP_PKEY_derive; a low-order peer key is refused)")
        try requireLength(Array(out.prefix(length)), keyLength, "the X25519 shared secret")
        // libcrypto already refuses an all-zero result; checked again because
        // accepting one would let anyone forge the secret.
        guard out.contains(where: { $0 != 0 }) else {
            throw DigestError(.invalidInput, context: "deriving an X25519 shared secret: the peer key has low order (the secret is all zeros)")
        }
        return out
    }

    /// An owned `EVP_PKEY` for a raw private key; the caller frees it.
    private static func privateKeyObject(_ privateKey: [UInt8]) throws(DigestError) -> OpaquePointer {
        try requireLength(privateKey, keyLength, "an X25519 private key")
        return try privateKey.withBytes { raw throws(DigestError) in
            guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, raw.bindMemory(to: UInt8.self).baseAddress, raw.count) else {
                throw DigestError(.library, libraryMessage: drainErrorQueue(), context: "loading an X25519 private key (EVP_PKEY_new_raw_private_key)")
            }
            return key
        }
    }
}
