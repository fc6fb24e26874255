/// age v1 (age-encryption.org/v1) with X25519 recipients, binary form: the
/// one-call conveniences over `AgeEncryptor` and `AgeDecryptor`.
public enum Age {
    /// Encrypts `buffers` in order, handing each piece of ciphertext to
    /// `sink` as it is ready. Throws an `AgeError`, or what `sink` threw.
    public static func encrypt<S: Sequence<[UInt8]>>(
        _ buffers: S, to recipients: [AgeRecipient], into sink: ([UInt8]) throws -> Void
    ) throws {
        try pump(buffers, through: AgeEncryptor(recipients: recipients), into: sink)
    }

    /// Decrypts `buffers` (one age file, in order), handing each piece of
    /// authenticated plaintext to `sink`. The plaintext is complete only if
    /// this returns; if it throws, discard what the sink received.
    public static func decrypt<S: Sequence<[UInt8]>>(
        _ buffers: S, with identities: [AgeIdentity], into sink: ([UInt8]) throws -> Void
    ) throws {
        try pump(buffers, through: AgeDecryptor(identities: identities), into: sink)
    }

    private static func pump<S: Sequence<[UInt8]>>(_ buffers: S, through stream: some AgeStream, into sink: ([UInt8]) throws -> Void) throws {
        for buffer in buffers {
            let out = try stream.update(buffer)
            if !out.isEmpty { try sink(out) }
        }
        let last = try stream.finish()
        if !last.isEmpty { try sink(last) }
    }

    public static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws(AgeError) -> [UInt8] {
        let encryptor = try AgeEncryptor(recipients: recipients)
        return try encryptor.update(plaintext) + encryptor.finish()
    }

    public static func decrypt(_ file: [UInt8], with identities: [AgeIdentity]) throws(AgeError) -> [UInt8] {
        let decryptor = try AgeDecryptor(identities: identities)
        return try decryptor.update(file) + decryptor.finish()
    }
}

/// What `AgeEncryptor` and `AgeDecryptor` share: bytes in, bytes out, then an end.
protocol AgeStream {
    func update(_ bytes: [UInt8]) throws(AgeError) -> [UInt8]
    func finish() throws(AgeError) -> [UInt8]
}

extension AgeEncryptor: AgeStream {}
extension AgeDecryptor: AgeStream {}
