import CryptoDigest

/// Decrypts one age v1 file with X25519 identities, as bytes arrive.
///
/// `update` returns the plaintext of every chunk that has authenticated so
/// far; `finish` returns the last one and checks that the file ended with a
/// final chunk. Until `finish` succeeds the plaintext is not known to be
/// complete: a caller must not act on it as a whole (commit a restore,
/// publish a file) before then. Memory stays at one sealed chunk plus what
/// the caller hands in. Not Sendable: one thread feeds one file.
public final class AgeDecryptor {
    private let identities: [AgeIdentity]
    private var parser = AgeHeaderParser()
    private var fileKey: [UInt8]?
    private var nonce: [UInt8] = []
    private var cipher: ChaCha20Poly1305?
    private var pending: [UInt8] = []
    private var counter: UInt64 = 0
    private var usable = true
    /// An error found after plaintext was released with it, reported by the next call.
    private var deferred: AgeError?

    public init(identities: [AgeIdentity]) throws(AgeError) {
        try FileKey.requireIdentities(identities)
        self.identities = identities
    }

    /// Takes more of the file; returns the plaintext that has authenticated.
    public func update(_ bytes: UnsafeRawBufferPointer) throws(AgeError) -> [UInt8] {
        try ensureUsable()
        do {
            return try consume(bytes)
        } catch {
            usable = false
            throw error
        }
    }

    public func update(_ bytes: [UInt8]) throws(AgeError) -> [UInt8] {
        try bytes.withUnsafeBytes { raw in Result { () throws(AgeError) in try update(raw) } }.get()
    }

    /// Opens the final chunk and returns its plaintext; throws if the file
    /// ended anywhere else. The decryptor cannot be used afterwards.
    public func finish() throws(AgeError) -> [UInt8] {
        try ensureUsable()
        usable = false
        guard fileKey != nil else {
            throw AgeError(.truncated, "the file ends inside the header (nothing of the payload was read)")
        }
        guard let cipher else {
            throw AgeError(.truncated, "the file ends inside the payload nonce (\(nonce.count) of 16 bytes)")
        }
        guard !pending.isEmpty || counter == 0 else {
            throw AgeError(.truncated, "the payload ends after chunk \(counter - 1), which is not the final one (the file was cut at a chunk boundary)")
        }
        guard pending.count >= ChaCha20Poly1305.tagLength else {
            throw AgeError(.truncated, counter == 0 && pending.isEmpty
                ? "the payload has no chunk at all"
                : "the payload ends inside chunk \(counter) (\(pending.count) bytes, less than its 16-byte tag)")
        }
        guard let plaintext = try open(cipher, final: true) else {
            throw AgeError(.corruptPayload, "the last chunk \(counter) does not authenticate: the file was altered or cut short")
        }
        guard !plaintext.isEmpty || counter == 0 else {
            throw AgeError(.corruptPayload, "the final chunk \(counter) is empty, which only an empty file may have")
        }
        return plaintext
    }

    private func consume(_ bytes: UnsafeRawBufferPointer) throws(AgeError) -> [UInt8] {
        var input = bytes[...]
        if parser.isInsideHeader {
            let used = try parser.feed(UnsafeRawBufferPointer(rebasing: input))
            input = input.dropFirst(used)
            if let parsed = parser.parsed {
                fileKey = try FileKey.unlock(parsed, with: identities)
            }
        }
        guard let fileKey else { return [] }
        if cipher == nil {
            let take = min(PayloadKeys.payloadNonceLength - nonce.count, input.count)
            nonce += input.prefix(take)
            input = input.dropFirst(take)
            guard nonce.count == PayloadKeys.payloadNonceLength else { return [] }
            cipher = try PayloadKeys.payloadCipher(fileKey: fileKey, nonce: nonce)
        }
        guard let cipher else { return [] }
        var out: [UInt8] = []
        while !input.isEmpty {
            if pending.count == PayloadKeys.sealedChunkSize {
                // A full chunk that is not a non-final one, with more bytes
                // after it: it can only be the final chunk, and nothing may
                // follow that. Its plaintext is authentic, so it is released;
                // the next call reports the extension.
                guard let plaintext = try open(cipher, final: true) else {
                    throw AgeError(.corruptPayload, "chunk \(counter) (from payload byte \(counter * UInt64(PayloadKeys.sealedChunkSize))) does not authenticate: the file was altered")
                }
                deferred = AgeError(.corruptPayload, "bytes follow the final chunk \(counter): the file was extended")
                return out + plaintext
            }
            let take = min(PayloadKeys.sealedChunkSize - pending.count, input.count)
            pending += input.prefix(take)
            input = input.dropFirst(take)
            // A full chunk whose tag holds with the non-final flag is one:
            // the flag is part of the nonce, so no other reading is possible.
            if pending.count == PayloadKeys.sealedChunkSize, let plaintext = try open(cipher, final: false) {
                out += plaintext
                counter += 1
                pending.removeAll(keepingCapacity: true)
            }
        }
        return out
    }

    /// The plaintext of the chunk in `pending`, or nil if its tag does not
    /// hold with this counter and flag.
    private func open(_ cipher: ChaCha20Poly1305, final: Bool) throws(AgeError) -> [UInt8]? {
        try pending.withUnsafeBytes { raw in
            Result { () throws(AgeError) in try PayloadKeys.openChunk(raw, counter: counter, final: final, with: cipher) }
        }.get()
    }

    private func ensureUsable() throws(AgeError) {
        if let deferred {
            usable = false
            self.deferred = nil
            throw deferred
        }
        guard usable else {
            throw AgeError(.unusable, "the decryptor was used after finish() or after an error (use a new AgeDecryptor for each file)")
        }
    }
}
