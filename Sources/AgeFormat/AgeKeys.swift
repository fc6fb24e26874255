import CryptoDigest

/// An age X25519 recipient: a public key, written `age1...` (Bech32, HRP `age`).
/// Encrypting to it needs nothing secret.
public struct AgeRecipient: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
    /// The 32-byte X25519 public key.
    public let publicKey: [UInt8]

    public init(publicKey: [UInt8]) throws(AgeError) {
        guard publicKey.count == X25519.keyLength else {
            throw AgeError(.invalidRecipient, "an X25519 public key has 32 bytes, not \(publicKey.count)")
        }
        self.publicKey = publicKey
    }

    /// Parses `age1...`, as `age-keygen` prints it after "public key:".
    public init(parsing text: String) throws(AgeError) {
        let trimmed = text.trimmingASCIIWhitespace()
        let shown = trimmed.count > 80 ? String(trimmed.prefix(80)) + "..." : trimmed
        self.publicKey = try decodeKeyText(
            trimmed, prefix: "age1", as: .invalidRecipient, subject: "'\(shown)' is not an X25519 age recipient",
            hint: "expected age1... as age-keygen prints it")
    }

    public init?(_ description: String) { try? self.init(parsing: description) }

    /// `age1...`, lowercase.
    public var description: String { Bech32.encode(hrp: "age", data: publicKey) }
}

/// An age X25519 identity: a private key, written `AGE-SECRET-KEY-1...`.
/// Its `description` names only its recipient, so logging one leaks nothing;
/// the secret form is `secretKeyText`, spelled out on purpose.
public struct AgeIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The 32-byte X25519 private key.
    public let privateKey: [UInt8]
    /// The public half: what to encrypt to.
    public let recipient: AgeRecipient

    public init(privateKey: [UInt8]) throws(AgeError) {
        guard privateKey.count == X25519.keyLength else {
            throw AgeError(.invalidIdentity, "an X25519 private key has 32 bytes, not \(privateKey.count)")
        }
        self.privateKey = privateKey
        let publicKey = try crypto("computing the public key of an identity") { () throws(DigestError) in
            try X25519.publicKey(fromPrivateKey: privateKey)
        }
        self.recipient = try AgeRecipient(publicKey: publicKey)
    }

    /// A new identity from libcrypto's CSPRNG, as `age-keygen` makes one.
    public static func generate() throws(AgeError) -> AgeIdentity {
        let key = try crypto("generating an identity") { () throws(DigestError) in try X25519.generatePrivateKey() }
        return try AgeIdentity(privateKey: key)
    }

    /// Parses one `AGE-SECRET-KEY-1...` line. The error never repeats the
    /// text: it may be a real secret with one character mistyped.
    public init(parsing text: String) throws(AgeError) {
        let trimmed = text.trimmingASCIIWhitespace()
        let key = try decodeKeyText(
            trimmed, prefix: "AGE-SECRET-KEY-1", as: .invalidIdentity, subject: "the secret key is not an X25519 age identity",
            hint: "expected AGE-SECRET-KEY-1... as age-keygen writes it")
        try self.init(privateKey: key)
    }

    /// `AGE-SECRET-KEY-1...`, uppercase, as identity files hold it. Secret.
    public var secretKeyText: String { Bech32.encode(hrp: "age-secret-key-", data: privateKey).uppercased() }

    public var description: String { "age identity for \(recipient)" }
}

/// The 32-byte X25519 key in Bech32 `text`, which must start with `prefix`
/// (its human-readable part and the "1"); otherwise an error of `kind` that
/// begins with `subject` and ends with `hint`.
private func decodeKeyText(
    _ text: String, prefix: String, as kind: AgeError.Kind, subject: String, hint: String
) throws(AgeError) -> [UInt8] {
    let decoded: (hrp: String, data: [UInt8])
    switch Bech32.decode(text) {
    case .success(let d): decoded = d
    case .failure(let why): throw AgeError(kind, "\(subject): \(why) (\(hint))")
    }
    // Bech32 is case-insensitive: age takes `AGE1...` and `age-secret-key-1...` too.
    guard decoded.hrp + "1" == prefix.lowercased() else {
        let given = String(text.prefix(decoded.hrp.count + 1))
        throw AgeError(kind, "\(subject): it starts with '\(given)', not '\(prefix)' (only X25519 keys are supported; \(hint))")
    }
    guard decoded.data.count == X25519.keyLength else {
        throw AgeError(kind, "\(subject): it holds \(decoded.data.count) bytes, not a 32-byte X25519 key")
    }
    return decoded.data
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
