import CryptoDigest

/// The keys and nonces age derives from the 16-byte file key (age.md,
/// "Header MAC" and "Payload").
enum PayloadKeys {
    static let fileKeyLength = 16
    static let payloadNonceLength = 16
    /// Plaintext bytes per payload chunk; each sealed chunk adds a 16-byte tag.
    static let chunkSize = 64 * 1024
    static let sealedChunkSize = chunkSize + ChaCha20Poly1305.tagLength

    static func macKey(fileKey: [UInt8]) throws(AgeError) -> [UInt8] {
        try crypto("deriving the header MAC key") { () throws(DigestError) in
            try HKDF.sha256(ikm: fileKey, salt: [], info: Array("header".utf8))
        }
    }

    static func headerMAC(fileKey: [UInt8], macInput: [UInt8]) throws(AgeError) -> [UInt8] {
        let key = try macKey(fileKey: fileKey)
        return try crypto("computing the header MAC") { () throws(DigestError) in
            try HMACSHA256.authenticationCode(key: key, message: macInput)
        }
    }

    static func payloadKey(fileKey: [UInt8], nonce: [UInt8]) throws(AgeError) -> [UInt8] {
        try crypto("deriving the payload key") { () throws(DigestError) in
            try HKDF.sha256(ikm: fileKey, salt: nonce, info: Array("payload".utf8))
        }
    }

    static func payloadCipher(key: [UInt8]) throws(AgeError) -> ChaCha20Poly1305 {
        try crypto("setting up the payload cipher") { () throws(DigestError) in try ChaCha20Poly1305(key: key) }
    }

    static func payloadCipher(fileKey: [UInt8], nonce: [UInt8]) throws(AgeError) -> ChaCha20Poly1305 {
        try payloadCipher(key: payloadKey(fileKey: fileKey, nonce: nonce))
    }

    /// STREAM's nonce: an 11-byte big-endian chunk counter, then 1 for the
    /// final chunk and 0 for every other.
    static func chunkNonce(_ counter: UInt64, final: Bool) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { nonce[10 - i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i))) }
        nonce[11] = final ? 1 : 0
        return nonce
    }

    /// The plaintext of one sealed chunk (`counter`, with the final flag or
    /// not), or nil if its tag does not hold with them.
    static func openChunk(_ sealed: UnsafeRawBufferPointer, counter: UInt64, final: Bool, with cipher: ChaCha20Poly1305) throws(AgeError) -> [UInt8]? {
        do throws(DigestError) {
            return try cipher.open(sealed, nonce: chunkNonce(counter, final: final))
        } catch where error.kind == .authenticationFailed {
            return nil
        } catch {
            throw AgeError(.crypto, "opening payload chunk \(counter)", underlying: error)
        }
    }
}
