import CryptoDigest
import Foundation

/// The two ways the repository protects what its key can read
/// (docs/repository-format.md, "Authentication").
enum Sealing {
    // MARK: - MAC-trailed documents (config, manifests)

    /// The last line of a MAC-trailed document.
    static let macPrefix = "pgvault-mac: "

    /// `body` (JSON ending in a newline) followed by the line
    /// `pgvault-mac: <hex>`: HMAC-SHA-256 under the key's MAC key of the
    /// object's key, a NUL, and the body. Binding the key means a manifest
    /// cannot be passed off as another backup's. A reader without the key can
    /// still read the body (the recovery script does).
    static func macTrailed(_ body: [UInt8], key: RepositoryKey, objectKey: String) throws -> [UInt8] {
        body + Array((macPrefix + Hex.encode(try mac(body, key: key, objectKey: objectKey)) + "\n").utf8)
    }

    /// The body of a MAC-trailed document, once its MAC checks out; an error
    /// naming `objectKey` otherwise.
    static func openMACTrailed(_ bytes: [UInt8], key: RepositoryKey, objectKey: String, location: String) throws -> [UInt8] {
        // The MAC line is the last: 13 + 64 hex + newline.
        let lineLength = macPrefix.utf8.count + 64 + 1
        guard bytes.count >= lineLength,
              Array(bytes[(bytes.count - lineLength)..<(bytes.count - lineLength + macPrefix.utf8.count)]) == Array(macPrefix.utf8),
              let given = Hex.decode(String(decoding: bytes[(bytes.count - 65)..<(bytes.count - 1)], as: UTF8.self)) else {
            throw PGVaultError.archive("\(location)/\(objectKey) has no MAC line, so it was not written by pgvault with this repository's key; refusing it (someone may have planted it): use another backup, and find out who wrote it")
        }
        let body = Array(bytes[..<(bytes.count - lineLength)])
        guard HMACSHA256.equal(try mac(body, key: key, objectKey: objectKey), given) else {
            throw PGVaultError.archive("\(location)/\(objectKey) is not authenticated by this repository's key (its MAC does not match): it was changed or planted, or the key is another repository's; refusing it. Use another backup, and find out who wrote it")
        }
        return body
    }

    private static func mac(_ body: [UInt8], key: RepositoryKey, objectKey: String) throws -> [UInt8] {
        try HMACSHA256.authenticationCode(key: key.macKey, message: Array(objectKey.utf8) + [0] + body)
    }

    // MARK: - Sealed objects (index, catalogs)

    static let sealMagic = Array("pgvault-sealed-v1\n".utf8)

    /// `magic || nonce || ChaCha20-Poly1305(seal key, nonce, plaintext, aad: object key)`.
    static func seal(_ plaintext: [UInt8], key: RepositoryKey, objectKey: String) throws -> [UInt8] {
        let nonce = try SecureRandom.bytes(ChaCha20Poly1305.nonceLength)
        let box = try ChaCha20Poly1305(key: key.sealKey)
        return sealMagic + nonce + (try box.seal(plaintext, nonce: nonce, aad: Array(objectKey.utf8)))
    }

    static func open(_ bytes: [UInt8], key: RepositoryKey, objectKey: String, location: String) throws -> [UInt8] {
        let head = sealMagic.count + ChaCha20Poly1305.nonceLength
        guard bytes.count >= head + ChaCha20Poly1305.tagLength, Array(bytes[..<sealMagic.count]) == sealMagic else {
            throw PGVaultError.archive("\(location)/\(objectKey) is not a sealed pgvault object (damaged or planted); run `pgvault check --repo \(location)`")
        }
        let nonce = Array(bytes[sealMagic.count..<head])
        do {
            return try ChaCha20Poly1305(key: key.sealKey).open(Array(bytes[head...]), nonce: nonce, aad: Array(objectKey.utf8))
        } catch {
            throw PGVaultError.archive("\(location)/\(objectKey) does not open with this repository's key: it was changed or planted, or the key is another repository's; refusing it. Run `pgvault check --repo \(location)`")
        }
    }
}
