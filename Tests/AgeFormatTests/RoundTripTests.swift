@testable import AgeFormat
import CryptoDigest
import Testing

/// Deterministic plaintext: every byte differs from its neighbours, so a
/// chunk moved or repeated would not decrypt to the same bytes.
func pattern(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// Splits `bytes` into pieces of `size` bytes (the last may be shorter).
func pieces(_ bytes: [UInt8], of size: Int) -> [[UInt8]] {
    stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
}

@Suite("AgeFormat: round trips, recipients, and tampering")
struct RoundTripTests {
    static let sizes = [0, 1, 65_535, 65_536, 65_537, 3 * 65_536]

    @Test("round trip, whole and streamed in pieces", arguments: sizes)
    func roundTrip(size: Int) throws {
        let identity = try AgeIdentity.generate()
        let plaintext = pattern(size)
        let file = try Age.encrypt(plaintext, to: [identity.recipient])
        // Header (22 + 98 + 48 bytes), payload nonce, then each chunk and its tag.
        let chunks = max(1, (size + 65_535) / 65_536)
        #expect(file.count == 168 + 16 + size + 16 * chunks)
        #expect(try Age.decrypt(file, with: [identity]) == plaintext)

        for piece in [1_000, 65_552, 65_553] {
            var streamed: [UInt8] = []
            try Age.encrypt(pieces(plaintext, of: piece), to: [identity.recipient]) { streamed += $0 }
            var back: [UInt8] = []
            try Age.decrypt(pieces(streamed, of: piece), with: [identity]) { back += $0 }
            #expect(back == plaintext, "pieces of \(piece)")
        }
    }

    /// Memory stays bounded: the decryptor never holds more than one sealed
    /// chunk, so what it releases lags the input by at most that.
    @Test("the decryptor releases each chunk as soon as it is known to be non-final")
    func streamingReleasesEarly() throws {
        let identity = try AgeIdentity.generate()
        let file = try Age.encrypt(pattern(5 * 65_536 + 10), to: [identity.recipient])
        let decryptor = try AgeDecryptor(identities: [identity])
        var fed = 0
        var released = 0
        for piece in pieces(file, of: 4_096) {
            released += try decryptor.update(piece).count
            fed += piece.count
            #expect(fed - released <= 2 * 65_552 + 4_096)
        }
        released += try decryptor.finish().count
        #expect(released == 5 * 65_536 + 10)
    }

    @Test("several recipients: each identity alone decrypts; one stanza each")
    func multipleRecipients() throws {
        let identities = try (0..<3).map { _ in try AgeIdentity.generate() }
        let plaintext = pattern(70_000)
        let file = try Age.encrypt(plaintext, to: identities.map(\.recipient))
        let header = String(decoding: file.prefix(400), as: UTF8.self)
        #expect(header.components(separatedBy: "\n-> X25519 ").count == 4)
        for identity in identities {
            #expect(try Age.decrypt(file, with: [identity]) == plaintext)
        }
        // An unrelated identity first in the list is skipped, not fatal.
        #expect(try Age.decrypt(file, with: [try AgeIdentity.generate(), identities[2]]) == plaintext)
    }

    @Test("a wrong identity: a clear error naming what was tried, and no plaintext")
    func wrongIdentity() throws {
        let right = try AgeIdentity.generate()
        let wrong = try AgeIdentity.generate()
        let file = try Age.encrypt(pattern(100), to: [right.recipient])
        let decryptor = try AgeDecryptor(identities: [wrong])
        let error = #expect(throws: AgeError.self) { _ = try decryptor.update(file) }
        #expect(error?.kind == .noMatchingIdentity)
        #expect(error?.description.contains("not encrypted to any of the given identities (recipients \(wrong.recipient))") == true, "\(String(describing: error))")
        #expect(error?.description.contains("X25519") == true)
        let after = #expect(throws: AgeError.self) { _ = try decryptor.finish() }
        #expect(after?.kind == .unusable)
    }

    @Test("no recipient or no identity is refused")
    func missingKeys() {
        #expect(throws: AgeError(.missingKey, "encrypting needs at least one recipient (age1...)")) { _ = try AgeEncryptor(recipients: []) }
        #expect(throws: AgeError.self) { _ = try AgeDecryptor(identities: []) }
    }

    /// Every byte of the header (version, stanzas, MAC line) and of the
    /// payload nonce, plus bytes across the payload's chunks and tags:
    /// flipping any one makes decryption fail, whatever the pieces.
    @Test("a flipped byte anywhere is detected")
    func flippedBytes() throws {
        let identity = try AgeIdentity.generate()
        let other = try AgeIdentity.generate()
        let plaintext = pattern(2 * 65_536 + 300)
        let file = try Age.encrypt(plaintext, to: [other.recipient, identity.recipient])
        let headerAndNonce = 22 + 2 * 98 + 48 + 16
        var positions = Array(0..<headerAndNonce)
        positions += [headerAndNonce, headerAndNonce + 1_000, headerAndNonce + 65_551, headerAndNonce + 65_552]
        positions += [headerAndNonce + 2 * 65_552 - 1, file.count - 300, file.count - 17, file.count - 1]
        var kinds: Set<AgeError.Kind> = []
        for position in positions {
            for bit: UInt8 in [0x01, 0x80] {
                var tampered = file
                tampered[position] ^= bit
                do {
                    var released: [UInt8] = []
                    try Age.decrypt(pieces(tampered, of: 8_192), with: [identity]) { released += $0 }
                    Issue.record("flipping bit \(bit) of byte \(position) went unnoticed")
                } catch let error as AgeError {
                    kinds.insert(error.kind)
                }
            }
        }
        // The header's damage is told apart from the payload's.
        #expect(kinds.isSuperset(of: [.malformedHeader, .headerMACMismatch, .corruptPayload]), "\(kinds)")
    }

    /// A file cut anywhere, at a chunk boundary or not, never decrypts.
    @Test("a truncated file is refused", arguments: [0, 10, 184, 199, 184 + 65_552, 184 + 65_552 + 1, 184 + 2 * 65_552, -1, -16, -17])
    func truncated(at cut: Int) throws {
        let identity = try AgeIdentity.generate()
        let file = try Age.encrypt(pattern(3 * 65_536), to: [identity.recipient])
        let length = cut < 0 ? file.count + cut : cut
        let error = #expect(throws: AgeError.self) { _ = try Age.decrypt(Array(file.prefix(length)), with: [identity]) }
        #expect([.truncated, .corruptPayload].contains(error?.kind), "cut at \(length): \(String(describing: error))")
    }

    @Test("a file cut exactly after a full chunk says so")
    func truncatedAtBoundary() throws {
        let identity = try AgeIdentity.generate()
        let file = try Age.encrypt(pattern(2 * 65_536), to: [identity.recipient])
        let error = #expect(throws: AgeError.self) { _ = try Age.decrypt(Array(file.prefix(184 + 65_552)), with: [identity]) }
        #expect(error?.kind == .truncated)
        #expect(error?.description.contains("ends after chunk 0, which is not the final one") == true, "\(String(describing: error))")
    }

    /// Bytes after the final chunk: one byte, a tag's worth, or another whole
    /// file's payload chunk, appended to a file whose last chunk is full or short.
    @Test("an extended file is refused", arguments: [65_536, 1_000])
    func extended(size: Int) throws {
        let identity = try AgeIdentity.generate()
        let file = try Age.encrypt(pattern(size), to: [identity.recipient])
        let another = try Age.encrypt(pattern(size, seed: 9), to: [identity.recipient])
        for tail in [[0], [UInt8](repeating: 0, count: 16), Array(another.suffix(65_552))] {
            let error = #expect(throws: AgeError.self) { _ = try Age.decrypt(file + tail, with: [identity]) }
            #expect(error?.kind == .corruptPayload, "\(tail.count) bytes appended: \(String(describing: error))")
        }
    }

    @Test("the encryptor and decryptor refuse use after finish")
    func useAfterFinish() throws {
        let identity = try AgeIdentity.generate()
        let encryptor = try AgeEncryptor(recipients: [identity.recipient])
        let file = try encryptor.update([1, 2, 3]) + encryptor.finish()
        #expect(throws: AgeError.self) { _ = try encryptor.update([4]) }
        #expect(throws: AgeError.self) { _ = try encryptor.finish() }
        let decryptor = try AgeDecryptor(identities: [identity])
        #expect(try decryptor.update(file) + decryptor.finish() == [1, 2, 3])
        let again = #expect(throws: AgeError.self) { _ = try decryptor.update([0]) }
        #expect(again?.kind == .unusable)
    }

    /// The header is exactly as age.md's ABNF writes it; the file key is
    /// fresh per file, so two encryptions of the same bytes differ.
    @Test("header shape, and fresh keys and nonces per file")
    func headerShape() throws {
        let identity = try AgeIdentity.generate()
        let a = try Age.encrypt([9], to: [identity.recipient])
        let b = try Age.encrypt([9], to: [identity.recipient])
        #expect(a != b)
        let lines = String(decoding: a.prefix(168), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5)
        #expect(lines[0] == "age-encryption.org/v1")
        #expect(lines[1].hasPrefix("-> X25519 ") && lines[1].count == 10 + 43)
        #expect(lines[2].count == 43)
        #expect(lines[3].hasPrefix("--- ") && lines[3].count == 4 + 43)
        #expect(lines[4].isEmpty)
    }
}
