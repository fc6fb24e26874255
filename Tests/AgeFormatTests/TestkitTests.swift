@testable import AgeFormat
import CryptoDigest
import Testing

/// age's own test kit (C2SP/CCTV): every X25519, header, stanza, MAC and
/// STREAM vector, fed whole and in odd-sized pieces. Each must end as the
/// kit says, and the plaintext released before the end (even before a
/// failure) must hash to the kit's `payload`.
@Suite("AgeFormat: the age test kit (C2SP/CCTV)")
struct TestkitTests {
    /// Which of our error kinds each of the kit's outcomes allows.
    static let allowed: [String: Set<AgeError.Kind>] = [
        "header failure": [.malformedHeader, .unsupportedVersion, .truncated],
        "HMAC failure": [.headerMACMismatch],
        "no match": [.noMatchingIdentity],
        "payload failure": [.corruptPayload, .truncated],
    ]

    @Test("the kit has the vectors this suite expects")
    func kitIsPresent() {
        #expect(TestkitVector.names.count == 67, "\(TestkitVector.names.count) vectors in \(TestkitVector.folder)")
    }

    @Test("vector", arguments: TestkitVector.names, [0, 4093])
    func vector(_ name: String, piece: Int) throws {
        let vector = try TestkitVector(named: name)
        // The kit's "empty" file has no identity; any will do to read its header.
        let identities = try vector.identities.isEmpty ? [AgeIdentity.generate()] : vector.identities.map { try AgeIdentity(parsing: $0) }
        let decryptor = try AgeDecryptor(identities: identities)
        var released: [UInt8] = []
        var outcome: AgeError?
        do {
            var start = 0
            let step = piece == 0 ? max(vector.file.count, 1) : piece
            while start < vector.file.count {
                let end = min(start + step, vector.file.count)
                released += try decryptor.update(Array(vector.file[start..<end]))
                start = end
            }
            released += try decryptor.finish()
        } catch {
            outcome = error
        }
        if vector.expect == "success" {
            #expect(outcome == nil, "\(name): \(String(describing: outcome))")
        } else {
            let allowed = try #require(Self.allowed[vector.expect], "unknown expectation '\(vector.expect)'")
            let error = try #require(outcome, "\(name) decrypted, but the kit expects \(vector.expect)")
            #expect(allowed.contains(error.kind), "\(name): expected \(vector.expect), got \(error)")
        }
        if let hash = vector.payloadSHA256 {
            #expect(try SHA2.hex(.sha256, of: released) == hash, "\(name): the released plaintext (\(released.count) bytes)")
        }
    }
}
