import CryptoDigest

/// The X25519 recipient type (age.md, "The X25519 recipient type"): the file
/// key wrapped under a key agreed between a fresh ephemeral key and the
/// recipient.
enum X25519Stanza {
    static let type = "X25519"
    static let label = Array("age-encryption.org/v1/X25519".utf8)
    /// The wrap uses each key once, so its nonce is fixed at zero.
    static let zeroNonce = [UInt8](repeating: 0, count: ChaCha20Poly1305.nonceLength)

    static func wrap(fileKey: [UInt8], to recipient: AgeRecipient) throws(AgeError) -> AgeStanza {
        try crypto("wrapping the file key for \(recipient)") { () throws(DigestError) in
            let ephemeral = try X25519.generatePrivateKey()
            let share = try X25519.publicKey(fromPrivateKey: ephemeral)
            let secret = try X25519.sharedSecret(privateKey: ephemeral, peerPublicKey: recipient.publicKey)
            let wrapKey = try HKDF.sha256(ikm: secret, salt: share + recipient.publicKey, info: label)
            let body = try ChaCha20Poly1305(key: wrapKey).seal(fileKey, nonce: zeroNonce)
            return AgeStanza(arguments: [type, String(decoding: Base64.encode(share), as: UTF8.self)], body: body)
        }
    }

    /// The file key, if `stanza` is an X25519 stanza for `identity`; nil if
    /// it is another type or for another identity. A malformed X25519 stanza
    /// throws, as the spec requires, whoever it was for.
    static func unwrap(_ stanza: AgeStanza, with identity: AgeIdentity) throws(AgeError) -> [UInt8]? {
        guard stanza.type == type else { return nil }
        guard stanza.arguments.count == 2 else {
            throw AgeError(.malformedHeader, "an X25519 stanza has \(stanza.arguments.count - 1) arguments, not 1")
        }
        guard let share = Base64.decode(Array(stanza.arguments[1].utf8)), share.count == X25519.keyLength else {
            throw AgeError(.malformedHeader, "an X25519 stanza's share is not the canonical base64 of 32 bytes")
        }
        // Checked before any decryption: a body of another length must not
        // reach the AEAD (partitioning oracles, age.md).
        guard stanza.body.count == 16 + ChaCha20Poly1305.tagLength else {
            throw AgeError(.malformedHeader, "an X25519 stanza's body has \(stanza.body.count) bytes, not 32")
        }
        let secret: [UInt8]
        do {
            secret = try X25519.sharedSecret(privateKey: identity.privateKey, peerPublicKey: share)
        } catch {
            throw AgeError(.malformedHeader, "an X25519 stanza's share is a low-order point (the shared secret would be all zeros)", underlying: error)
        }
        return try crypto("unwrapping an X25519 stanza") { () throws(DigestError) -> [UInt8]? in
            let wrapKey = try HKDF.sha256(ikm: secret, salt: share + identity.recipient.publicKey, info: label)
            do throws(DigestError) {
                return try ChaCha20Poly1305(key: wrapKey).open(stanza.body, nonce: zeroNonce)
            } catch where error.kind == .authenticationFailed {
                return nil  // wrapped for another identity
            }
        }
    }
}
