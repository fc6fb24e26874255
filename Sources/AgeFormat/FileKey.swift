import CryptoDigest

/// Recovering the file key from a parsed header: what the sequential
/// `AgeDecryptor` and the random-access `AgeRangeDecryptor` share.
enum FileKey {
    static func requireIdentities(_ identities: [AgeIdentity]) throws(AgeError) {
        guard !identities.isEmpty else {
            throw AgeError(.missingKey, "decrypting needs at least one identity (an AGE-SECRET-KEY-1... file)")
        }
    }

    /// The file key from the first stanza an identity unwraps, once the
    /// header's MAC proves the header is the one written with it.
    static func unlock(_ header: AgeHeaderParser.Parsed, with identities: [AgeIdentity]) throws(AgeError) -> [UInt8] {
        var found: [UInt8]?
        search: for stanza in header.stanzas {
            for identity in identities {
                if let key = try X25519Stanza.unwrap(stanza, with: identity) {
                    found = key
                    break search
                }
            }
        }
        guard let fileKey = found else {
            let types = Set(header.stanzas.map(\.type)).sorted().joined(separator: ", ")
            let tried = identities.map { $0.recipient.description }.joined(separator: ", ")
            throw AgeError(.noMatchingIdentity,
                "the file was not encrypted to any of the given identities (recipients \(tried)); its stanzas are of type \(types) — give the identity file that matches one of its recipients")
        }
        guard fileKey.count == PayloadKeys.fileKeyLength else {
            throw AgeError(.malformedHeader, "the wrapped file key has \(fileKey.count) bytes, not 16")
        }
        let expected = try PayloadKeys.headerMAC(fileKey: fileKey, macInput: header.macInput)
        guard HMACSHA256.equal(expected, header.mac) else {
            throw AgeError(.headerMACMismatch, "the header's MAC does not match its contents: the header was altered")
        }
        return fileKey
    }
}
