import CCrypto
@testable import CryptoDigest
import Testing

/// The EVP wrappers age is built from, each against its RFC's published
/// vectors, plus the refusals: a flipped bit, a short input, a bad length.
@Suite("CryptoDigest: X25519, HKDF, HMAC, ChaCha20-Poly1305 through libcrypto")
struct PrimitivesTests {
    static func hex(_ text: String) -> [UInt8] { Hex.decode(text) ?? [] }

    @Test("X25519: RFC 7748 §6.1 (Alice and Bob)")
    func x25519Vectors() throws {
        let alice = Self.hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let bob = Self.hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        let alicePublic = try X25519.publicKey(fromPrivateKey: alice)
        let bobPublic = try X25519.publicKey(fromPrivateKey: bob)
        #expect(Hex.encode(alicePublic) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(Hex.encode(bobPublic) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(Hex.encode(try X25519.sharedSecret(privateKey: alice, peerPublicKey: bobPublic)) == shared)
        #expect(Hex.encode(try X25519.sharedSecret(privateKey: bob, peerPublicKey: alicePublic)) == shared)
    }

    @Test("X25519: generated keys agree, and differ from each other")
    func x25519Generated() throws {
        let a = try X25519.generatePrivateKey()
        let b = try X25519.generatePrivateKey()
        #expect(a.count == 32 && b.count == 32 && a != b)
        let ab = try X25519.sharedSecret(privateKey: a, peerPublicKey: X25519.publicKey(fromPrivateKey: b))
        let ba = try X25519.sharedSecret(privateKey: b, peerPublicKey: X25519.publicKey(fromPrivateKey: a))
        #expect(ab == ba)
    }

    /// A low-order point (here the all-zero point) makes the secret all zeros:
    /// refused, with this thread's error queue left empty.
    @Test("X25519: a low-order peer key and a wrong-length key are refused")
    func x25519Refusals() throws {
        let key = try X25519.generatePrivateKey()
        let zero = #expect(throws: DigestError.self) {
            _ = try X25519.sharedSecret(privateKey: key, peerPublicKey: [UInt8](repeating: 0, count: 32))
        }
        #expect(zero?.description.contains("EVP_PKEY_derive") == true || zero?.description.contains("low order") == true, "\(String(describing: zero))")
        #expect(ERR_peek_error() == 0)
        let short = #expect(throws: DigestError.self) { _ = try X25519.publicKey(fromPrivateKey: [1, 2, 3]) }
        #expect(short?.kind == .invalidInput)
        #expect(short?.description == "invalid input: an X25519 private key must be 32 bytes, not 3")
    }

    @Test("HKDF-SHA-256: RFC 5869 test cases 1 and 3 (empty salt and info)")
    func hkdfVectors() throws {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let one = try HKDF.sha256(ikm: ikm, salt: Array(0...0x0c), info: Array(0xf0...0xf9), outputLength: 42)
        #expect(Hex.encode(one) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        let three = try HKDF.sha256(ikm: ikm, salt: [], info: [], outputLength: 42)
        #expect(Hex.encode(three) == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
        let tooLong = #expect(throws: DigestError.self) { _ = try HKDF.sha256(ikm: ikm, salt: [], info: [], outputLength: 8161) }
        #expect(tooLong?.kind == .invalidInput)
    }

    @Test("HMAC-SHA-256: RFC 4231 test cases 1 and 2; constant-time equality")
    func hmacVectors() throws {
        let one = try HMACSHA256.authenticationCode(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(Hex.encode(one) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        let two = try HMACSHA256.authenticationCode(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Hex.encode(two) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(HMACSHA256.equal(two, two))
        var flipped = two
        flipped[31] ^= 1
        #expect(!HMACSHA256.equal(two, flipped))
        #expect(!HMACSHA256.equal(two, Array(two.prefix(31))))
    }

    @Test("HMAC-SHA-256 fed in pieces: RFC 4231 case 2 in any split, the same code as one shot, and again for a second message")
    func hmacStream() throws {
        let message = Array("what do ya want for nothing?".utf8)
        let stream = try HMACSHA256Stream(key: Array("Jefe".utf8))
        for split in [0, 1, 13, message.count] {
            try message[..<split].withUnsafeBytes { try stream.update($0) }
            try message[split...].withUnsafeBytes { try stream.update($0) }
            #expect(Hex.encode(try stream.finalize()) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "split at \(split)")
        }
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try big.withUnsafeBytes { try stream.update($0) }
        #expect(try stream.finalize() == (try HMACSHA256.authenticationCode(key: Array("Jefe".utf8), message: big)))
        #expect(try stream.finalize() == (try HMACSHA256.authenticationCode(key: Array("Jefe".utf8), message: [])))
    }

    static let rfc8439Key: [UInt8] = Array(0x80...0x9f)
    static let rfc8439Nonce = hex("070000004041424344454647")
    static let rfc8439AAD = hex("50515253c0c1c2c3c4c5c6c7")
    static let rfc8439Plaintext = Array(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
    static let rfc8439Sealed = hex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
            + "1ae10b594f09e26a7e902ecbd0600691")

    @Test("ChaCha20-Poly1305: RFC 8439 §2.8.2, both ways")
    func chachaVector() throws {
        let aead = try ChaCha20Poly1305(key: Self.rfc8439Key)
        #expect(try aead.seal(Self.rfc8439Plaintext, nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD) == Self.rfc8439Sealed)
        #expect(try aead.open(Self.rfc8439Sealed, nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD) == Self.rfc8439Plaintext)
        // The same object seals an empty message after a long one: no state carries over.
        let empty = try aead.seal([UInt8](), nonce: [UInt8](repeating: 0, count: 12))
        #expect(empty.count == 16)
        #expect(try aead.open(empty, nonce: [UInt8](repeating: 0, count: 12)).isEmpty)
    }

    /// Every bit of the sealed message matters, as do the nonce and the AAD.
    @Test("ChaCha20-Poly1305: a flipped bit, another nonce or AAD, a short message are refused", arguments: [0, 57, 113, 114, 129])
    func chachaRefusals(flipAt: Int) throws {
        let aead = try ChaCha20Poly1305(key: Self.rfc8439Key)
        var sealed = Self.rfc8439Sealed
        sealed[flipAt] ^= 0x04
        let flipped = #expect(throws: DigestError.self) { _ = try aead.open(sealed, nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD) }
        #expect(flipped?.kind == .authenticationFailed)
        #expect(ERR_peek_error() == 0)
        var nonce = Self.rfc8439Nonce
        nonce[11] ^= 1
        #expect(throws: DigestError.self) { _ = try aead.open(Self.rfc8439Sealed, nonce: nonce, aad: Self.rfc8439AAD) }
        #expect(throws: DigestError.self) { _ = try aead.open(Self.rfc8439Sealed, nonce: Self.rfc8439Nonce) }
        let short = #expect(throws: DigestError.self) { _ = try aead.open(Array(Self.rfc8439Sealed.prefix(15)), nonce: Self.rfc8439Nonce) }
        #expect(short?.kind == .authenticationFailed)
        // The intact message still opens with the same object afterwards.
        #expect(try aead.open(Self.rfc8439Sealed, nonce: Self.rfc8439Nonce, aad: Self.rfc8439AAD) == Self.rfc8439Plaintext)
    }

    @Test("ChaCha20-Poly1305 and random bytes: wrong lengths are refused by name")
    func lengths() throws {
        let badKey = #expect(throws: DigestError.self) { _ = try ChaCha20Poly1305(key: [UInt8](repeating: 0, count: 16)) }
        #expect(badKey?.description == "invalid input: a ChaCha20-Poly1305 key must be 32 bytes, not 16")
        let aead = try ChaCha20Poly1305(key: Self.rfc8439Key)
        let badNonce = #expect(throws: DigestError.self) { _ = try aead.seal([1], nonce: [0]) }
        #expect(badNonce?.kind == .invalidInput)
        let random = try SecureRandom.bytes(32)
        #expect(random.count == 32)
        #expect(try SecureRandom.bytes(32) != random)
        #expect(try SecureRandom.bytes(0).isEmpty)
    }
}
