import CCrypto
@testable import CryptoDigest
import Testing

@Suite("CryptoDigest: SHA-2 through libcrypto")
struct SHA2Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let algorithm: SHA2.Algorithm
        let input: String
        let hex: String
        var testDescription: String { "\(algorithm) of \"\(input.prefix(12))\"" }
    }

    /// FIPS 180-2 examples (and the empty input), checked against `openssl dgst`.
    static let vectors = [
        Vector(algorithm: .sha256, input: "", hex: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        Vector(algorithm: .sha256, input: "abc", hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        Vector(
            algorithm: .sha256, input: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            hex: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        Vector(algorithm: .sha256, input: "한국어 😀\n", hex: "cecab192f2724a44f2ce973e8bdec95ee5eb3f9196f44ad24a149d82d686abd2"),
        Vector(
            algorithm: .sha384, input: "",
            hex: "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
        Vector(
            algorithm: .sha384, input: "abc",
            hex: "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        Vector(
            algorithm: .sha384, input: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            hex: "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6b0455a8520bc4e6f5fe95b1fe3c8452b"),
    ]

    @Test("known vectors, through every way of feeding", arguments: vectors)
    func knownVectors(_ v: Vector) throws {
        #expect(try SHA2.hex(v.algorithm, of: Array(v.input.utf8)) == v.hex)

        let fromText = try SHA2(v.algorithm)
        try fromText.update(v.input)
        #expect(try fromText.hexDigest() == v.hex)

        let fromRaw = try SHA2(v.algorithm)
        try Array(v.input.utf8).withUnsafeBytes { try fromRaw.update($0) }
        let bytes = try fromRaw.finalize()
        #expect(bytes.count == (v.algorithm == .sha256 ? 32 : 48))
        #expect(Hex.encode(bytes) == v.hex)
        #expect(Hex.decode(v.hex) == bytes)
        #expect(Hex.decode("\\x" + v.hex.uppercased()) == bytes)
    }

    /// One million "a" (FIPS 180-2), fed in chunks of many sizes, with empty
    /// updates in between: streaming gives the one-shot digest.
    @Test("a million a's, streamed in chunks", arguments: [1, 3, 64, 1000, 65_536, 1_000_000])
    func streaming(chunk: Int) throws {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        let sha256 = try SHA2(.sha256)
        let sha384 = try SHA2(.sha384)
        var start = 0
        while start < input.count {
            let end = min(start + chunk, input.count)
            try input[start..<end].withUnsafeBytes { part in
                try sha256.update(part)
                try sha384.update(part)
            }
            try sha256.update([])
            start = end
        }
        #expect(try sha256.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(
            try sha384.hexDigest()
                == "9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985")
    }

    /// One object digests one input: using it after `finalize()` is refused
    /// by name, never a silent fresh start or a digest of nothing.
    @Test("feeding or finalizing again after finalize is refused")
    func reuseAfterFinalize() throws {
        let digest = try SHA2(.sha256)
        try digest.update("abc")
        #expect(try digest.hexDigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

        let fed = #expect(throws: DigestError.self) { try digest.update("more") }
        #expect(fed?.kind == .unusable)
        #expect(fed?.description.contains("feeding a SHA-256 digest after it was finalized") == true, "\(fed.map(String.init(describing:)) ?? "")")

        let again = #expect(throws: DigestError.self) { _ = try digest.finalize() }
        #expect(again?.kind == .unusable)
        #expect(again?.description.contains("finalizing a SHA-256 digest after it was finalized") == true)
        // An empty update is refused too: the state is checked before the input.
        #expect(throws: DigestError.self) { try digest.update([]) }
    }

    /// A failing EVP call: the choke point throws with OpenSSL's own text
    /// (ERR_error_string_n) and leaves this thread's error queue empty.
    @Test("a failed EVP call carries OpenSSL's error text")
    func libraryErrorText() throws {
        let ctx = try #require(EVP_MD_CTX_new())
        defer { EVP_MD_CTX_free(ctx) }
        // No digest given and none set yet: OpenSSL refuses and queues why.
        let rc = EVP_DigestInit_ex(ctx, nil, nil)
        #expect(rc != 1)
        let error = #expect(throws: DigestError.self) {
            try evpCheck(rc, while: "starting a test digest (EVP_DigestInit_ex)")
        }
        #expect(error?.kind == .library)
        let text = try #require(error?.libraryMessage)
        #expect(text.hasPrefix("error:"), "\(text)")
        #expect(text.contains("no digest set"), "\(text)")
        #expect(error?.description == "libcrypto error while starting a test digest (EVP_DigestInit_ex): \(text)")
        #expect(ERR_peek_error() == 0, "the queue was drained")
    }

    @Test("a return code of 1 passes the choke point")
    func successPasses() throws {
        try evpCheck(1, while: "nothing")
        #expect(drainErrorQueue() == nil)
    }
}
