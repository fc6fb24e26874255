import CryptoDigest

/// An error of the age layer. `kind` says what is wrong; `detail` says where,
/// naming the thing the caller gave (a recipient, an identity file line, a
/// header line, a payload chunk) and, where there is one, the fix.
public struct AgeError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An `age1...` recipient that is not one.
        case invalidRecipient
        /// An `AGE-SECRET-KEY-1...` identity, or an identity file, that is not one.
        case invalidIdentity
        /// Decrypting was given no identity, or encrypting no recipient.
        case missingKey
        /// The header is not a well-formed age v1 header.
        case malformedHeader
        /// The file is another age version than v1.
        case unsupportedVersion
        /// No stanza unwraps with any of the given identities.
        case noMatchingIdentity
        /// The header's MAC does not match: it was altered.
        case headerMACMismatch
        /// A payload chunk does not authenticate, is out of place, or the
        /// payload continues after its final chunk: the file was altered.
        case corruptPayload
        /// The file ends before its final chunk: it was cut short.
        case truncated
        /// A random-access read asked for plaintext past the file's end, or
        /// was handed more ciphertext than the chunks it needs.
        case invalidRange
        /// The encryptor or decryptor was used after `finish()` or after an error.
        case unusable
        /// libcrypto failed; `underlying` has its text.
        case crypto
    }

    public let kind: Kind
    public let detail: String
    public let underlying: DigestError?

    public init(_ kind: Kind, _ detail: String, underlying: DigestError? = nil) {
        self.kind = kind
        self.detail = detail
        self.underlying = underlying
    }

    public var description: String {
        let what: String
        switch kind {
        case .invalidRecipient: what = "invalid age recipient"
        case .invalidIdentity: what = "invalid age identity"
        case .missingKey: what = "missing key"
        case .malformedHeader: what = "malformed age header"
        case .unsupportedVersion: what = "unsupported age version"
        case .noMatchingIdentity: what = "no identity matches"
        case .headerMACMismatch: what = "age header MAC mismatch"
        case .corruptPayload: what = "corrupt age payload"
        case .truncated: what = "truncated age file"
        case .invalidRange: what = "age range outside the file"
        case .unusable: what = "age stream unusable"
        case .crypto: what = "libcrypto failure"
        }
        if let underlying { return "\(what): \(detail) (\(underlying))" }
        return "\(what): \(detail)"
    }
}

/// Runs one libcrypto step, turning its `DigestError` into an `AgeError`
/// that says what the age layer was doing.
@inline(__always)
func crypto<R>(_ doing: @autoclosure () -> String, _ step: () throws(DigestError) -> R) throws(AgeError) -> R {
    do {
        return try step()
    } catch {
        throw AgeError(.crypto, doing(), underlying: error)
    }
}
