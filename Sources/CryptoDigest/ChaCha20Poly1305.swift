import CCrypto

/// ChaCha20-Poly1305 (RFC 8439) through libcrypto's `EVP_chacha20_poly1305`:
/// a 32-byte key, a 12-byte nonce per message, a 16-byte tag after the
/// ciphertext. One object holds one key and one `EVP_CIPHER_CTX` (freed in
/// `deinit`), re-initialized for every message so that no state carries over.
/// Not Sendable: one thread uses one object.
public final class ChaCha20Poly1305 {
    public static let keyLength = 32
    public static let nonceLength = 12
    public static let tagLength = 16

    /// Owned `EVP_CIPHER_CTX*`.
    private let ctx: OpaquePointer
    private let key: [UInt8]

    public init(key: [UInt8]) throws(DigestError) {
        try requireLength(key, Self.keyLength, "a ChaCha20-Poly1305 key")
        guard let ctx = EVP_CIPHER_CTX_new() else {
            throw DigestError(.allocationFailed, libraryMessage: drainErrorQueue(), context: "creating a ChaCha20-Poly1305 context (EVP_CIPHER_CTX_new)")
        }
        self.ctx = ctx
        self.key = key
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// `plaintext` encrypted, followed by the 16-byte tag over it and `aad`.
    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8] = []) throws(DigestError) -> [UInt8] {
        try requireLength(nonce, Self.nonceLength, "a ChaCha20-Poly1305 nonce")
        guard plaintext.count <= Int(Int32.max) - Self.tagLength else {
            throw DigestError(.invalidInput, context: "cannot seal \(plaintext.count) bytes at once (at most 2 GiB: split the input)")
        }
        try evpCheck(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nil, key, nonce), while: "sealing (EVP_EncryptInit_ex)")
        try feedAAD(aad, EVP_EncryptUpdate, "sealing")
        var out = [UInt8](repeating: 0, count: plaintext.count + Self.tagLength)
        var written: Int32 = 0
        if !plaintext.isEmpty {
            try evpCheck(
                EVP_EncryptUpdate(ctx, &out, &written, plaintext.bindMemory(to: UInt8.self).baseAddress, Int32(plaintext.count)),
                while: "sealing (EVP_EncryptUpdate)")
        }
        var tail: Int32 = 0
        try out.withUnsafeMutableBufferPointer { buffer in
            Result { () throws(DigestError) in
                let base = buffer.baseAddress.map { $0 + Int(written) }
                try evpCheck(EVP_EncryptFinal_ex(ctx, base, &tail), while: "sealing (EVP_EncryptFinal_ex)")
                try evpCheck(
                    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagLength), buffer.baseAddress.map { $0 + plaintext.count }),
                    while: "sealing (EVP_CTRL_AEAD_GET_TAG)")
            }
        }.get()
        guard Int(written + tail) == plaintext.count else {
            throw DigestError(.library, context: "sealing: libcrypto wrote \(written + tail) of \(plaintext.count) bytes")
        }
        return out
    }

    /// The plaintext of `sealed` (ciphertext followed by its tag); throws
    /// `.authenticationFailed` when the tag does not match, and returns nothing
    /// of a message that fails.
    public func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8] = []) throws(DigestError) -> [UInt8] {
        try requireLength(nonce, Self.nonceLength, "a ChaCha20-Poly1305 nonce")
        guard sealed.count >= Self.tagLength else {
            throw DigestError(.authenticationFailed, context: "opening \(sealed.count) bytes: too short to hold a \(Self.tagLength)-byte tag")
        }
        guard sealed.count <= Int(Int32.max) else {
            throw DigestError(.invalidInput, context: "cannot open \(sealed.count) bytes at once (at most 2 GiB)")
        }
        let bytes = sealed.bindMemory(to: UInt8.self)
        let length = sealed.count - Self.tagLength
        var tag = Array(bytes[length...])
        try evpCheck(EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), nil, key, nonce), while: "opening (EVP_DecryptInit_ex)")
        try evpCheck(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagLength), &tag), while: "opening (EVP_CTRL_AEAD_SET_TAG)")
        try feedAAD(aad, EVP_DecryptUpdate, "opening")
        var out = [UInt8](repeating: 0, count: length)
        var written: Int32 = 0
        if length > 0 {
            try evpCheck(EVP_DecryptUpdate(ctx, &out, &written, bytes.baseAddress, Int32(length)), while: "opening (EVP_DecryptUpdate)")
        }
        var tail: Int32 = 0
        let verified = out.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(ctx, buffer.baseAddress.map { $0 + Int(written) }, &tail)
        }
        guard verified == 1 else {
            // A tag mismatch is the expected failure, not a library fault:
            // drop what libcrypto queued so it does not confuse a later report.
            _ = drainErrorQueue()
            throw DigestError(.authenticationFailed, context: "opening \(length) bytes (EVP_DecryptFinal_ex: the tag does not match)")
        }
        guard Int(written + tail) == length else {
            throw DigestError(.library, context: "opening: libcrypto wrote \(written + tail) of \(length) bytes")
        }
        return out
    }

    public func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8] = []) throws(DigestError) -> [UInt8] {
        try plaintext.withBytes { raw throws(DigestError) in try seal(raw, nonce: nonce, aad: aad) }
    }

    public func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8] = []) throws(DigestError) -> [UInt8] {
        try sealed.withBytes { raw throws(DigestError) in try open(raw, nonce: nonce, aad: aad) }
    }

    private typealias Update = (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<Int32>?, UnsafePointer<UInt8>?, Int32) -> Int32

    /// Additional data goes in through an update with no output buffer.
    private func feedAAD(_ aad: [UInt8], _ update: Update, _ doing: String) throws(DigestError) {
        guard !aad.isEmpty else { return }
        var ignored: Int32 = 0
        try evpCheck(update(ctx, nil, &ignored, aad, Int32(aad.count)), while: "\(doing) (additional data)")
    }
}
