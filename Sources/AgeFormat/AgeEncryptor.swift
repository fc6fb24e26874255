import CryptoDigest

/// Encrypts one age v1 file to X25519 recipients, as bytes arrive.
///
/// `update` returns the ciphertext ready so far (the header with the first
/// call) and `finish` the rest; memory stays at one 64 KiB chunk plus what
/// the caller hands in. The final chunk is sealed only at `finish`, because
/// only then is it known to be final. Not Sendable: one thread feeds one file.
public final class AgeEncryptor {
    private var header: [UInt8]?
    private let cipher: ChaCha20Poly1305
    private var pending: [UInt8] = []
    private var counter: UInt64 = 0
    private var usable = true
    /// How many bytes of the file precede the payload's first chunk: the
    /// header (through its MAC line) and the 16-byte payload nonce. Known
    /// from `init`, so a writer can record it next to the file;
    /// `AgeRangeDecryptor` uses it to fetch chunks without the header.
    public let payloadOffset: Int

    public init(recipients: [AgeRecipient]) throws(AgeError) {
        guard !recipients.isEmpty else {
            throw AgeError(.missingKey, "encrypting needs at least one recipient (age1...)")
        }
        let fileKey = try crypto("drawing a file key") { () throws(DigestError) in try SecureRandom.bytes(PayloadKeys.fileKeyLength) }
        var stanzas: [AgeStanza] = []
        for recipient in recipients {
            stanzas.append(try X25519Stanza.wrap(fileKey: fileKey, to: recipient))
        }
        let macInput = AgeHeader.encodeForMAC(stanzas)
        let mac = try PayloadKeys.headerMAC(fileKey: fileKey, macInput: macInput)
        let nonce = try crypto("drawing the payload nonce") { () throws(DigestError) in
            try SecureRandom.bytes(PayloadKeys.payloadNonceLength)
        }
        let header = macInput + AgeHeader.encodeMACLine(mac) + nonce
        self.header = header
        payloadOffset = header.count
        cipher = try PayloadKeys.payloadCipher(fileKey: fileKey, nonce: nonce)
        pending.reserveCapacity(PayloadKeys.chunkSize)
    }

    /// Takes more plaintext; returns the ciphertext that is ready.
    public func update(_ bytes: UnsafeRawBufferPointer) throws(AgeError) -> [UInt8] {
        try ensureUsable()
        var out = takeHeader()
        var input = bytes[...]
        while !input.isEmpty {
            // A full chunk is sealed as non-final only once more data follows.
            if pending.count == PayloadKeys.chunkSize {
                out += try sealPending(final: false)
            }
            let take = min(PayloadKeys.chunkSize - pending.count, input.count)
            pending += input.prefix(take)
            input = input.dropFirst(take)
        }
        return out
    }

    public func update(_ bytes: [UInt8]) throws(AgeError) -> [UInt8] {
        try bytes.withUnsafeBytes { raw in Result { () throws(AgeError) in try update(raw) } }.get()
    }

    /// Seals the final chunk (empty only if nothing was written) and returns
    /// the last ciphertext. The encryptor cannot be used afterwards.
    public func finish() throws(AgeError) -> [UInt8] {
        try ensureUsable()
        var out = takeHeader()
        out += try sealPending(final: true)
        usable = false
        return out
    }

    private func takeHeader() -> [UInt8] {
        defer { header = nil }
        return header ?? []
    }

    private func sealPending(final: Bool) throws(AgeError) -> [UInt8] {
        let nonce = PayloadKeys.chunkNonce(counter, final: final)
        let sealed: [UInt8]
        do {
            sealed = try cipher.seal(pending, nonce: nonce)
        } catch {
            usable = false
            throw AgeError(.crypto, "sealing payload chunk \(counter)", underlying: error)
        }
        counter += 1
        pending.removeAll(keepingCapacity: true)
        return sealed
    }

    private func ensureUsable() throws(AgeError) {
        guard usable else {
            throw AgeError(.unusable, "the encryptor was used after finish() or after an error (use a new AgeEncryptor for each file)")
        }
    }
}
