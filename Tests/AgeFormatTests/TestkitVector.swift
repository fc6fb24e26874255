import CZlib
import Foundation
import TestSupport
import Testing

/// One file of age's test kit (C2SP/CCTV, age/testdata; see testkit/README.md):
/// `key: value` lines, a blank line, then the age file, zlib-compressed when
/// `compressed: zlib` says so.
struct TestkitVector: Sendable, CustomTestStringConvertible {
    let name: String
    let expect: String
    /// SHA-256 of all the plaintext released before success or failure.
    let payloadSHA256: String?
    let identities: [String]
    let file: [UInt8]

    var testDescription: String { name }

    static let folder = RepoPaths.root + "/Tests/AgeFormatTests/testkit"

    /// Every vector in the folder, by name.
    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0 != "README.md" }.sorted()
    }

    init(named name: String) throws {
        let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/" + name)))
        guard let split = (0..<(raw.count - 1)).first(where: { raw[$0] == 0x0a && raw[$0 + 1] == 0x0a }) else {
            throw HarnessError("\(name): no blank line after the test kit header")
        }
        var fields: [(String, String)] = []
        for line in String(decoding: raw[..<split], as: UTF8.self).split(separator: "\n") {
            guard let colon = line.firstRange(of: ": ") else { throw HarnessError("\(name): bad line '\(line)'") }
            fields.append((String(line[..<colon.lowerBound]), String(line[colon.upperBound...])))
        }
        let body = Array(raw[(split + 2)...])
        self.name = name
        expect = fields.first { $0.0 == "expect" }?.1 ?? ""
        payloadSHA256 = fields.first { $0.0 == "payload" }?.1
        identities = fields.filter { $0.0 == "identity" }.map(\.1)
        file = fields.contains { $0 == ("compressed", "zlib") } ? try Self.inflate(body, name: name) : body
    }

    /// zlib's `uncompress`, retried with a larger buffer until the output fits.
    static func inflate(_ input: [UInt8], name: String) throws -> [UInt8] {
        var capacity = max(input.count * 64, 1 << 20)
        while capacity <= 1 << 28 {
            var out = [UInt8](repeating: 0, count: capacity)
            var length = uLongf(capacity)
            let rc = uncompress(&out, &length, input, uLong(input.count))
            if rc == Z_OK { return Array(out.prefix(Int(length))) }
            guard rc == Z_BUF_ERROR else { throw HarnessError("\(name): zlib uncompress failed (\(rc))") }
            capacity *= 4
        }
        throw HarnessError("\(name): more than 256 MiB once inflated")
    }
}
