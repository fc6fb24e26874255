import CryptoDigest

/// Decrypts a plaintext byte range of one age v1 file (X25519 recipients)
/// from only the payload chunks that cover it, without reading the rest.
///
/// age's payload is STREAM: 64 KiB plaintext chunks, each sealed on its own
/// with a nonce made of its index and a last-chunk flag. So any chunk can be
/// opened alone, and its tag proves both its bytes and its place: a chunk
/// moved, altered, or presented as the last when it is not (a cut file), or
/// as not the last when it is (an extended one), fails to open. A caller
/// that fetches ranges of a remote object uses it in three steps:
///
/// 1. fetch a prefix of the file (the recorded `AgeEncryptor.payloadOffset`
///    bytes, or e.g. the first 4 KiB; see `payloadOffset(inPrefix:)`) and
///    create the decryptor: this unwraps the file key and checks the header MAC;
/// 2. ask `ciphertextRange(plaintext:fileSize:)` which file bytes to fetch;
/// 3. hand them to `decrypt(plaintext:ciphertext:fileSize:)`.
///
/// `fileSize` is the whole file's size in bytes; the last chunk is the one
/// it ends in, so a wrong size makes the read fail, never return other bytes.
/// Memory: the fetched ciphertext, the result, and one chunk's plaintext.
/// The decryptor holds the payload key (never printed) and is Sendable: one
/// can serve concurrent reads of its file.
public struct AgeRangeDecryptor: Sendable, CustomStringConvertible {
    /// How many bytes precede the payload's first chunk: the header through
    /// its MAC line, and the 16-byte payload nonce.
    public let payloadOffset: Int
    private let payloadKey: [UInt8]

    /// Reads the header and payload nonce from `prefix`, the first bytes of
    /// the file (at least `payloadOffset` of them; more are ignored), unwraps
    /// the file key with the first identity that matches, and checks the
    /// header's MAC. Throws what `AgeDecryptor` throws for the same header,
    /// or `.truncated` if `prefix` ends before the payload nonce does.
    public init(prefix: [UInt8], identities: [AgeIdentity]) throws(AgeError) {
        try FileKey.requireIdentities(identities)
        let (parsed, headerLength) = try Self.header(in: prefix)
        guard let parsed else {
            throw AgeError(.truncated, "the \(prefix.count) bytes given end inside the header: pass more of the start of the file (a header has at most \(AgeHeader.maximumSize) bytes)")
        }
        let offset = headerLength + PayloadKeys.payloadNonceLength
        guard prefix.count >= offset else {
            throw AgeError(.truncated, "the \(prefix.count) bytes given end inside the payload nonce: pass the first \(offset) bytes of the file")
        }
        let fileKey = try FileKey.unlock(parsed, with: identities)
        payloadKey = try PayloadKeys.payloadKey(fileKey: fileKey, nonce: Array(prefix[headerLength..<offset]))
        payloadOffset = offset
    }

    /// The `payloadOffset` of the file that `prefix` starts, or nil if the
    /// header does not end within it (fetch more). Needs no identity, checks
    /// nothing but the header's form; throws if that is not age v1's.
    public static func payloadOffset(inPrefix prefix: [UInt8]) throws(AgeError) -> Int? {
        let (parsed, headerLength) = try header(in: prefix)
        return parsed == nil ? nil : headerLength + PayloadKeys.payloadNonceLength
    }

    /// The header `prefix` starts with, if it ends there, and its length.
    private static func header(in prefix: [UInt8]) throws(AgeError) -> (AgeHeaderParser.Parsed?, Int) {
        var parser = AgeHeaderParser()
        let length = try prefix.withUnsafeBytes { raw in Result { () throws(AgeError) in try parser.feed(raw) } }.get()
        return (parser.parsed, length)
    }

    /// The plaintext size of a file of `fileSize` bytes. Throws if no age
    /// file with this header can have that size.
    public func plaintextSize(fileSize: Int) throws(AgeError) -> Int {
        try Layout(payloadOffset: payloadOffset, fileSize: fileSize).plaintextSize
    }

    /// The bytes of the file (offsets from its start) to fetch for
    /// `plaintext`: the whole payload chunks that cover it. An empty range
    /// still gets the chunk it falls in, so even an empty file's read is
    /// authenticated. Throws `.invalidRange` if `plaintext` goes past the end.
    public func ciphertextRange(plaintext: Range<Int>, fileSize: Int) throws(AgeError) -> Range<Int> {
        let layout = try Layout(payloadOffset: payloadOffset, fileSize: fileSize)
        return layout.fileBytes(of: try layout.chunks(covering: plaintext))
    }

    /// Exactly the plaintext bytes `plaintext`, from `ciphertext`: the file
    /// bytes `ciphertextRange(plaintext:fileSize:)` named, all of them. Each
    /// chunk is opened with its index and, for the one `fileSize` ends in,
    /// the last-chunk flag; any that does not authenticate fails the read
    /// with `.corruptPayload`, and no plaintext is returned. Fewer bytes
    /// than named fail with `.truncated`, more with `.invalidRange`.
    public func decrypt(plaintext: Range<Int>, ciphertext: UnsafeRawBufferPointer, fileSize: Int) throws(AgeError) -> [UInt8] {
        let layout = try Layout(payloadOffset: payloadOffset, fileSize: fileSize)
        let chunks = try layout.chunks(covering: plaintext)
        let expected = layout.fileBytes(of: chunks)
        guard ciphertext.count >= expected.count else {
            throw AgeError(.truncated, "\(ciphertext.count) bytes were given for file bytes \(expected) (\(expected.count) bytes, payload chunks \(chunks)): the read came back short, or the file is shorter than \(fileSize) bytes")
        }
        guard ciphertext.count == expected.count else {
            throw AgeError(.invalidRange, "\(ciphertext.count) bytes were given for file bytes \(expected) (\(expected.count) bytes, payload chunks \(chunks)): pass exactly the range ciphertextRange(plaintext:fileSize:) returns")
        }
        let cipher = try PayloadKeys.payloadCipher(key: payloadKey)
        var out: [UInt8] = []
        out.reserveCapacity(plaintext.count)
        for chunk in chunks {
            let start = (chunk - chunks.lowerBound) * PayloadKeys.sealedChunkSize
            let sealed = UnsafeRawBufferPointer(rebasing: ciphertext[start..<min(start + PayloadKeys.sealedChunkSize, ciphertext.count)])
            let final = chunk == layout.chunkCount - 1
            guard let opened = try PayloadKeys.openChunk(sealed, counter: UInt64(chunk), final: final, with: cipher) else {
                throw AgeError(.corruptPayload, "payload chunk \(chunk) (file bytes from \(expected.lowerBound + start)) does not authenticate as the \(final ? "last" : "non-last") chunk: the file was altered, or it is not \(fileSize) bytes long")
            }
            let chunkStart = chunk * PayloadKeys.chunkSize
            let wanted = max(plaintext.lowerBound, chunkStart)..<min(plaintext.upperBound, chunkStart + opened.count)
            if !wanted.isEmpty {
                out += opened[(wanted.lowerBound - chunkStart)..<(wanted.upperBound - chunkStart)]
            }
        }
        return out
    }

    public func decrypt(plaintext: Range<Int>, ciphertext: [UInt8], fileSize: Int) throws(AgeError) -> [UInt8] {
        try ciphertext.withUnsafeBytes { raw in
            Result { () throws(AgeError) in try decrypt(plaintext: plaintext, ciphertext: raw, fileSize: fileSize) }
        }.get()
    }

    public var description: String { "AgeRangeDecryptor(payloadOffset: \(payloadOffset))" }
}

/// Where the payload chunks of a file of a given size lie: pure arithmetic,
/// checked against what age can write.
private struct Layout {
    let payloadOffset: Int
    let fileSize: Int
    let chunkCount: Int
    let plaintextSize: Int

    init(payloadOffset: Int, fileSize: Int) throws(AgeError) {
        let sealed = PayloadKeys.sealedChunkSize
        let tag = ChaCha20Poly1305.tagLength
        guard fileSize >= payloadOffset, fileSize - payloadOffset >= tag else {
            throw AgeError(.truncated, "a file of \(fileSize) bytes whose payload starts at byte \(payloadOffset) has no room for its last chunk (at least \(tag) bytes): the file was cut short, or its size is wrong")
        }
        let payload = fileSize - payloadOffset
        let count = payload / sealed + (payload % sealed == 0 ? 0 : 1)  // rounded up, without overflow
        let last = payload - (count - 1) * sealed
        guard last >= tag else {
            throw AgeError(.truncated, "a file of \(fileSize) bytes would end inside the tag of payload chunk \(count - 1): the file was cut short, or its size is wrong")
        }
        guard last > tag || count == 1 else {
            throw AgeError(.corruptPayload, "a file of \(fileSize) bytes would end in an empty payload chunk \(count - 1) after data, which age never writes: the file was altered, or its size is wrong")
        }
        self.payloadOffset = payloadOffset
        self.fileSize = fileSize
        chunkCount = count
        plaintextSize = payload - count * tag
    }

    /// The indexes of the chunks holding `plaintext`; for an empty range,
    /// the one it falls in (the last, at the end of the file).
    func chunks(covering plaintext: Range<Int>) throws(AgeError) -> ClosedRange<Int> {
        guard plaintext.lowerBound >= 0, plaintext.upperBound <= plaintextSize else {
            throw AgeError(.invalidRange, "plaintext bytes \(plaintext) are outside the file's \(plaintextSize) bytes (a file of \(fileSize) bytes): the range is wrong, or the file is not the one it was recorded for")
        }
        let first = min(plaintext.lowerBound / PayloadKeys.chunkSize, chunkCount - 1)
        let last = plaintext.isEmpty ? first : (plaintext.upperBound - 1) / PayloadKeys.chunkSize
        return first...last
    }

    /// The file bytes the sealed `chunks` occupy; the last chunk ends the file.
    func fileBytes(of chunks: ClosedRange<Int>) -> Range<Int> {
        let start = payloadOffset + chunks.lowerBound * PayloadKeys.sealedChunkSize
        return start..<min(payloadOffset + (chunks.upperBound + 1) * PayloadKeys.sealedChunkSize, fileSize)
    }
}
