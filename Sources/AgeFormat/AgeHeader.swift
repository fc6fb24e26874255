/// One recipient stanza: `-> type args...` and a base64 body.
struct AgeStanza: Sendable, Equatable {
    /// The arguments after `->`; the first names the stanza's type.
    var arguments: [String]
    var body: [UInt8]

    var type: String { arguments.first ?? "" }
}

/// age v1's textual header (age.md, "Header"): the version line, one or more
/// stanzas, and the MAC line.
enum AgeHeader {
    static let versionLine = "age-encryption.org/v1"
    /// A cap on the header's size, so a hostile file cannot make the reader
    /// buffer without bound. An X25519 stanza takes 98 bytes.
    static let maximumSize = 1 << 20

    /// Everything the MAC covers: the header up to and including `---`.
    static func encodeForMAC(_ stanzas: [AgeStanza]) -> [UInt8] {
        var out = Array("\(versionLine)\n".utf8)
        for stanza in stanzas {
            out += Array("-> \(stanza.arguments.joined(separator: " "))\n".utf8)
            let text = Base64.encode(stanza.body)
            var start = 0
            // Full lines of 64 columns, then a shorter one, which may be empty.
            while text.count - start >= 64 {
                out += text[start..<(start + 64)] + [0x0a]
                start += 64
            }
            out += text[start...] + [0x0a]
        }
        out += Array("---".utf8)
        return out
    }

    /// The MAC line's remainder: ` <base64 MAC>\n`.
    static func encodeMACLine(_ mac: [UInt8]) -> [UInt8] {
        [0x20] + Base64.encode(mac) + [0x0a]
    }
}

/// Reads a header line by line as bytes arrive, keeping only what the MAC
/// needs. `feed` returns how many of the given bytes belonged to the header;
/// once `parsed` is set, the rest is payload.
struct AgeHeaderParser {
    private enum State {
        case version
        case stanzaOrMAC
        case body(arguments: [String], text: [UInt8])
        case done
    }

    /// The stanzas, the bytes the MAC covers, and the MAC.
    typealias Parsed = (stanzas: [AgeStanza], macInput: [UInt8], mac: [UInt8])

    private var state = State.version
    private var line: [UInt8] = []
    private var lineNumber = 0
    private var stanzas: [AgeStanza] = []
    /// The header's bytes so far (bounded by `AgeHeader.maximumSize`).
    private var seen: [UInt8] = []

    /// The stanzas, the bytes the MAC covers, and the MAC, once the MAC line ends.
    private(set) var parsed: Parsed?

    var isInsideHeader: Bool { parsed == nil }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(AgeError) -> Int {
        var used = 0
        for byte in bytes {
            guard parsed == nil else { break }
            used += 1
            guard seen.count < AgeHeader.maximumSize else {
                throw AgeError(.malformedHeader, "the header is longer than \(AgeHeader.maximumSize) bytes (this is not an age file, or a hostile one)")
            }
            seen.append(byte)
            if byte == 0x0a {
                lineNumber += 1
                try take(line)
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
            }
        }
        return used
    }

    private func fail(_ why: String) -> AgeError {
        AgeError(.malformedHeader, "header line \(lineNumber): \(why)")
    }

    private mutating func take(_ line: [UInt8]) throws(AgeError) {
        switch state {
        case .version:
            let text = String(decoding: line, as: UTF8.self)
            if text == AgeHeader.versionLine {
                state = .stanzaOrMAC
            } else if text.hasPrefix("age-encryption.org/") {
                throw AgeError(.unsupportedVersion, "the file is '\(text.prefix(64))', and only age-encryption.org/v1 is supported")
            } else {
                throw fail("this is not an age file: it does not start with '\(AgeHeader.versionLine)' (an armored file must be dearmored first)")
            }
        case .stanzaOrMAC:
            if line.starts(with: Array("-> ".utf8)) {
                state = .body(arguments: try arguments(of: line.dropFirst(3)), text: [])
            } else if line.starts(with: Array("---".utf8)) {
                try finish(macLine: line)
            } else {
                throw fail("expected a stanza ('-> ') or the MAC line ('--- ')")
            }
        case .body(let arguments, var text):
            guard line.count <= 64, line.allSatisfy(Base64.isAlphabet) else {
                throw fail("a stanza body line must be at most 64 characters of unpadded base64")
            }
            text += line
            guard line.count < 64 else {
                state = .body(arguments: arguments, text: text)
                return
            }
            // A line shorter than 64 columns ends the body.
            guard let body = Base64.decode(text) else { throw fail("the stanza body is not canonical base64") }
            stanzas.append(AgeStanza(arguments: arguments, body: body))
            state = .stanzaOrMAC
        case .done:
            break
        }
    }

    private func arguments(of rest: ArraySlice<UInt8>) throws(AgeError) -> [String] {
        let parts = rest.split(separator: 0x20, omittingEmptySubsequences: false)
        guard !rest.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (0x21...0x7e).contains($0) } }) else {
            throw fail("a stanza needs one or more arguments, separated by single spaces, of printable ASCII")
        }
        return parts.map { String(decoding: $0, as: UTF8.self) }
    }

    private mutating func finish(macLine: [UInt8]) throws(AgeError) {
        guard !stanzas.isEmpty else { throw fail("the header has no recipient stanza") }
        guard macLine.count == 3 + 1 + 43, macLine[3] == 0x20, let mac = Base64.decode(macLine[4...]), mac.count == 32 else {
            throw fail("the MAC line must be '--- ' and 43 characters of canonical base64")
        }
        // The MAC covers the header up to and including "---": all seen but
        // the space, the encoded MAC, and the line feed.
        parsed = (stanzas, Array(seen.dropLast(1 + 43 + 1)), mac)
        state = .done
        seen = []
    }
}
