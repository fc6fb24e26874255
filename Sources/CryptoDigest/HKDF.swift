import CCrypto

/// HKDF-SHA-256 (RFC 5869: extract with `salt`, then expand with `info`)
/// through libcrypto's `EVP_PKEY_HKDF`.
public enum HKDF {
    /// `outputLength` bytes of key derived from `ikm`. An empty salt is
    /// HashLen zero bytes (RFC 5869 §2.2), which is what libcrypto does when
    /// no salt is set.
    public static func sha256(ikm: [UInt8], salt: [UInt8], info: [UInt8], outputLength: Int = 32) throws(DigestError) -> [UInt8] {
        guard (1...(255 * 32)).contains(outputLength) else {
            throw DigestError(.invalidInput, context: "deriving an HKDF-SHA-256 key: the length must be 1...8160 bytes, not \(outputLength)")
        }
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else {
            throw DigestError(.allocationFailed, libraryMessage: drainErrorQueue(), context: "deriving an HKDF-SHA-256 key (EVP_PKEY_CTX_new_id)")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        try evpCheck(EVP_PKEY_derive_init(ctx), while: "deriving an HKDF-SHA-256 key (EVP_PKEY_derive_init)")
        try evpCheck(EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()), while: "deriving an HKDF-SHA-256 key (EVP_PKEY_CTX_set_hkdf_md)")
        if !salt.isEmpty {
            try salt.withBytes { raw throws(DigestError) in
                try evpCheck(
                    EVP_PKEY_CTX_set1_hkdf_salt(ctx, raw.bindMemory(to: UInt8.self).baseAddress, Int32(raw.count)),
                    while: "deriving an HKDF-SHA-256 key (EVP_PKEY_CTX_set1_hkdf_salt)")
            }
        }
        try ikm.withBytes { raw throws(DigestError) in
            try evpCheck(
                EVP_PKEY_CTX_set1_hkdf_key(ctx, raw.bindMemory(to: UInt8.self).baseAddress, Int32(raw.count)),
                while: "deriving an HKDF-SHA-256 key (EVP_PKEY_CTX_set1_hkdf_key)")
        }
        if !info.isEmpty {
            try info.withBytes { raw throws(DigestError) in
                try evpCheck(
                    EVP_PKEY_CTX_add1_hkdf_info(ctx, raw.bindMemory(to: UInt8.self).baseAddress, Int32(raw.count)),
                    while: "deriving an HKDF-SHA-256 key (EVP_PKEY_CTX_add1_hkdf_info)")
            }
        }
        var out = [UInt8](repeating: 0, count: outputLength)
        var length = outputLength
        try evpCheck(EVP_PKEY_derive(ctx, &out, &length), while: "deriving an HKDF-SHA-256 key (EVP_PKEY_derive)")
        try requireLength(Array(out.prefix(length)), outputLength, "the derived HKDF-SHA-256 key")
        return out
    }
}
