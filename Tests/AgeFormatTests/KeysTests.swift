@testable import AgeFormat
import CryptoDigest
import Foundation
import Testing

@Suite("AgeFormat: Bech32, recipients, identities, identity files")
struct KeysTests {
    /// BIP-173's valid test vectors: the checksum holds, and encoding the
    /// decoded data gives the same string back (in lowercase).
    @Test("BIP-173 valid strings", arguments: [
        "A12UEL5L", "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    ])
    func bip173Valid(_ text: String) throws {
        let decoded = try Bech32.decode(text).get()
        #expect(Bech32.encode(hrp: decoded.hrp, data: decoded.data) == text.lowercased())
    }

    @Test("BIP-173 data: abcdef1qpzry9x8... holds 0x00443214c74254b635cf84653a56d7c675be77df")
    func bip173Data() throws {
        let decoded = try Bech32.decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw").get()
        #expect(decoded.hrp == "abcdef")
        #expect(Hex.encode(decoded.data) == "00443214c74254b635cf84653a56d7c675be77df")
    }

    /// BIP-173's invalid strings, plus mixed case and a changed character.
    @Test("BIP-173 invalid strings are refused", arguments: [
        "pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "de1lg7wt\u{ff}", "A1G7SGD8", "10a06t8", "1qzzfhee",
        "A12uEL5L", "a12uel5m",
    ])
    func bip173Invalid(_ text: String) {
        if case .success(let decoded) = Bech32.decode(text) {
            Issue.record("'\(text)' decoded to \(decoded)")
        }
    }

    /// BIP-173 refuses strings over 90 characters; age's keys may be longer,
    /// so this one, invalid only for its length, decodes.
    @Test("no length limit, unlike BIP-173")
    func noLengthLimit() throws {
        let decoded = try Bech32.decode("an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx").get()
        #expect(decoded.data.isEmpty)
    }

    /// The X25519 example keys of age's spec (age.md), which `age-keygen -y` agrees with.
    static let specIdentity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    static let specRecipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"

    @Test("age's spec example: the identity's recipient, both encodings round-trip")
    func specKeys() throws {
        let identity = try AgeIdentity(parsing: Self.specIdentity)
        #expect(identity.privateKey == [UInt8](repeating: 0x42, count: 32))
        #expect(identity.recipient.description == Self.specRecipient)
        #expect(identity.secretKeyText == Self.specIdentity)
        #expect(try AgeRecipient(parsing: " \(Self.specRecipient)\n") == identity.recipient)
        #expect(AgeRecipient(Self.specRecipient.uppercased()) == identity.recipient, "an all-uppercase recipient is still Bech32")
        #expect(try AgeIdentity(parsing: Self.specIdentity.lowercased()) == identity)
        // Printing an identity shows only its public half.
        #expect("\(identity)" == "age identity for \(Self.specRecipient)")
    }

    @Test("a mistyped identity is refused without repeating the secret")
    func mistypedIdentity() throws {
        var text = Array(Self.specIdentity)
        text[30] = text[30] == "Q" ? "P" : "Q"
        let error = #expect(throws: AgeError.self) { _ = try AgeIdentity(parsing: String(text)) }
        #expect(error?.kind == .invalidIdentity)
        #expect(error?.description.contains("checksum does not match") == true, "\(String(describing: error))")
        #expect(error?.description.contains("GFPYYSJZ") == false, "the error must not echo the secret")
    }

    @Test("wrong kinds of key are refused by name", arguments: [
        (specIdentity, "'AGE-SECRET-KEY-1', not 'age1'"),
        ("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwJ", "mixes uppercase and lowercase"),
        (Bech32.encode(hrp: "age", data: [UInt8](repeating: 1, count: 20)), "holds 20 bytes"),
        ("ssh-ed25519 AAAA", "not an X25519 age recipient"),
    ])
    func badRecipients(_ text: String, _ expected: String) {
        let error = #expect(throws: AgeError.self) { _ = try AgeRecipient(parsing: text) }
        #expect(error?.kind == .invalidRecipient)
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
    }

    @Test("a recipient given where an identity belongs is refused")
    func recipientAsIdentity() {
        let error = #expect(throws: AgeError.self) { _ = try AgeIdentity(parsing: Self.specRecipient) }
        #expect(error?.kind == .invalidIdentity)
        #expect(error?.description.contains("it starts with 'age1', not 'AGE-SECRET-KEY-1'") == true, "\(String(describing: error))")
    }

    @Test("generated identities: 32 random bytes each, their recipients parse back")
    func generated() throws {
        let a = try AgeIdentity.generate()
        let b = try AgeIdentity.generate()
        #expect(a != b)
        #expect(try AgeIdentity(parsing: a.secretKeyText) == a)
        #expect(try AgeRecipient(parsing: a.recipient.description) == a.recipient)
    }

    /// As age-keygen writes them, with more keys, blank lines, indentation and CRLF.
    @Test("identity files: comments, blank lines, several keys; the rendering reads back")
    func identityFiles() throws {
        let a = try AgeIdentity.generate()
        let b = try AgeIdentity.generate()
        let rendered = AgeIdentityFile.render(a, created: Date(timeIntervalSince1970: 1_796_000_000))
        #expect(rendered.hasPrefix("# created: 2026-11-30T"))
        #expect(rendered.contains("\n# public key: \(a.recipient)\n\(a.secretKeyText)\n"))
        let text = rendered + "\n\n  # another\r\n  \(b.secretKeyText)  \r\n\n"
        #expect(try AgeIdentityFile.parse(text, source: "keys.txt") == [a, b])
    }

    @Test("identity files: a bad line is named by number; a file without a key is refused")
    func badIdentityFiles() {
        let bad = #expect(throws: AgeError.self) {
            _ = try AgeIdentityFile.parse("# created: now\n\n\(Self.specRecipient)\n", source: "/srv/keys.txt")
        }
        #expect(bad?.kind == .invalidIdentity)
        #expect(bad?.description.contains("/srv/keys.txt, line 3: ") == true, "\(String(describing: bad))")
        let empty = #expect(throws: AgeError.self) { _ = try AgeIdentityFile.parse("# nothing\n", source: "empty.txt") }
        #expect(empty?.description.contains("empty.txt holds no AGE-SECRET-KEY-1... line (make one with age-keygen -o FILE)") == true)
    }
}
