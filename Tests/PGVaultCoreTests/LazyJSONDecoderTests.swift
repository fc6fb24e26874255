import Foundation
@testable import PGVaultCore
import TestSupport
import Testing

/// The manifest's decoder (``LazyJSONDecoder``) against JSON's grammar and
/// against Foundation's `JSONDecoder`, which it replaces for manifests.
@Suite("LazyJSONDecoder")
struct LazyJSONDecoderTests {
    struct Sample: Codable, Equatable {
        var text: String
        var number: Int64
        var small: UInt8
        var ratio: Double
        var flag: Bool
        var missing: String?
        var null: Int?
        var list: [String]
        var nested: [[Int]]
        var map: [String: String]
        var inner: Inner?

        struct Inner: Codable, Equatable { var name: String }
    }

    private func lazyDecode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try LazyJSONDecoder.decode(type, from: Data(json.utf8))
    }

    private func both<T: Decodable & Equatable>(_ type: T.Type, _ json: String) throws -> T {
        let mine = try lazyDecode(type, json)
        let foundation = try JSONDecoder().decode(type, from: Data(json.utf8))
        #expect(mine == foundation, "\(json)")
        return mine
    }

    @Test("decodes every kind of value as JSONDecoder does")
    func values() throws {
        let json = """
        { "text": "a \\"quoted\\" \\\\ back\\/slash\\n\\t\\u00e9\\ud83d\\ude00 é 😀",
          "number": -9223372036854775808, "small": 255, "ratio": -1.5e-3, "flag": true,
          "null": null, "list": ["", "x", "timestamp with time zone", "timestamp with time zone"],
          "nested": [[], [1, 2], [3]], "map": {"a": "1", "b\\u0000c": "2", "": ""},
          "inner": {"name": "n", "ignored": [1, {"deep": [null, false]}]} }
        """
        let s = try both(Sample.self, json)
        #expect(s.text == "a \"quoted\" \\ back/slash\n\té😀 é 😀")
        #expect(s.number == Int64.min && s.small == 255 && s.ratio == -0.0015 && s.flag)
        #expect(s.missing == nil && s.null == nil)
        #expect(s.map == ["a": "1", "b\u{0}c": "2", "": ""])
        #expect(try both([Int64].self, "[9223372036854775807, 0, -0, 1e3, 2.0]") == [Int64.max, 0, 0, 1000, 2])
        #expect(try both([Double].self, " [0.5, -2, 1E+2, 3e-1] ") == [0.5, -2, 100, 0.3])
        #expect(try both(String.self, "\"top\"") == "top")
    }

    @Test("a manifest decodes to what JSONDecoder gives, with names and types that repeat sharing storage")
    func manifest() throws {
        var manifest = RestoreFixtures.syntheticManifest()
        manifest.tables[0].name = "naïve \"table\"\t\u{1F600}"
        manifest.copySettings["DateStyle"] = "ISO, MDY"
        let bytes = Data(try manifest.encoded())
        let mine = try LazyJSONDecoder.decode(Manifest.self, from: bytes)
        #expect(mine == (try JSONDecoder().decode(Manifest.self, from: bytes)))
        #expect(mine == manifest)
        // "timestamp with time zone" in two partitions: one string storage.
        func storage(_ text: String) -> UnsafeRawPointer? {
            var text = text
            return text.withUTF8 { UnsafeRawPointer($0.baseAddress) }
        }
        let types = mine.tables.filter { $0.kind == "partition" }.map { $0.columns[1].type }
        #expect(types.count >= 2 && types.allSatisfy { $0 == "timestamp with time zone" })
        #expect(storage(types[0]) != nil && storage(types[0]) == storage(types[1]))
        #expect(try Manifest.decode(bytes, source: "m") == manifest)
    }

    @Test("malformed JSON is refused with where and why, at every point a document can be cut")
    func malformed() throws {
        let valid = #"{"text":"a\u00e9","number":1,"small":2,"ratio":0.5,"flag":false,"list":["x"],"nested":[[1]],"map":{},"inner":null}"#
        _ = try both(Sample.self, valid)
        let bytes = Array(valid.utf8)
        for cut in 0..<bytes.count {
            #expect(throws: JSONSyntaxError.self, "cut at \(cut)") {
                try LazyJSONDecoder.decode(Sample.self, from: Data(bytes[0..<cut]))
            }
        }
        let bad: [String: String] = [
            #"{"a":1,}"#: "expected a string",
            #"{"a" 1}"#: "':'",
            #"[1 2]"#: "',' or ']'",
            #"[01]"#: "leading zero",
            #"[+1]"#: "not a JSON value",
            #"[1.]"#: "fraction",
            #"[1e]"#: "exponent",
            #"[tru]"#: "not a JSON value",
            #"["\x"]"#: "unknown escape",
            #"["\u12G4"]"#: "hexadecimal",
            #"["\ud83d"]"#: "surrogate",
            #"["\ude00"]"#: "low surrogate",
            "[\"tab\there\"]": "control character",
            #"{} {}"#: "after the document's end",
            #"{"a":1"#: "',' or '}'",
            String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000): "nested deeper",
        ]
        for (json, reason) in bad {
            do {
                _ = try lazyDecode([String: [Int]].self, json)
                Issue.record("accepted \(json.prefix(40))")
            } catch let error as JSONSyntaxError {
                #expect(error.reason.contains(reason), "\(json.prefix(40)): \(error)")
            }
        }
        // Bytes that are not UTF-8, in a value and in a key.
        for raw: [UInt8] in [[0x5B, 0x22, 0xFF, 0x22, 0x5D], [0x7B, 0x22, 0xC3, 0x22, 0x3A, 0x31, 0x7D]] {
            #expect(throws: JSONSyntaxError.self) { try LazyJSONDecoder.decode([String: Int].self, from: Data(raw)) }
            #expect(throws: JSONSyntaxError.self) { try LazyJSONDecoder.decode([String].self, from: Data(raw)) }
        }
    }

    struct Column: Decodable { var name: String; var type: String }
    struct Table: Decodable { var columns: [Column] }
    struct Root: Decodable { var tables: [Table] }

    /// What went wrong decoding `json` as a Root, and where.
    private func failure(_ json: String) -> String {
        func dotted(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        do {
            _ = try lazyDecode(Root.self, json)
            return "decoded"
        } catch DecodingError.keyNotFound(let key, let context) {
            return "missing " + dotted(context.codingPath + [key])
        } catch DecodingError.typeMismatch(_, let context) {
            return "type " + dotted(context.codingPath)
        } catch DecodingError.valueNotFound(_, let context) {
            return "null " + dotted(context.codingPath)
        } catch {
            return "\(error)"
        }
    }

    @Test("values of the wrong kind are DecodingErrors that name their path")
    func mismatches() throws {
        #expect(failure(#"{"tables":[{"columns":[{"name":"a","type":"t"},{"name":"b"}]}]}"#) == "missing tables.[0].columns.[1].type")
        #expect(failure(#"{"tables":[{"columns":[{"name":"a","type":7}]}]}"#) == "type tables.[0].columns.[0].type")
        #expect(failure(#"{"tables":[{"columns":null}]}"#) == "null tables.[0].columns")
        #expect(failure(#"{"tables":{}}"#) == "type tables")
        #expect(throws: DecodingError.self) { try lazyDecode([UInt8].self, "[256]") }
        #expect(throws: DecodingError.self) { try lazyDecode([Int].self, "[1.5]") }
        #expect(throws: DecodingError.self) { try lazyDecode([Int64].self, "[9223372036854775808]") }
        #expect(throws: DecodingError.self) { try lazyDecode([Double].self, "[1e999]") }
        // The first of equal keys wins, as with JSONDecoder.
        #expect(try both([String: Int].self, #"{"a":1,"a":2}"#) == ["a": 1])
        struct One: Codable, Equatable { var a: Int }
        #expect(try both(One.self, #"{"a":1,"a":2}"#) == One(a: 1))
    }

    @Test("mutated manifests: where JSONDecoder decodes one, the same manifest comes out; where it refuses, so does this")
    func againstFoundation() throws {
        let bytes = Array(try RestoreFixtures.syntheticManifest().encoded())
        var rng = SplitMix(seed: 0x1A2E_150D)
        var agreed = 0
        for i in 0..<800 {
            let mutated = i % 2 == 0 ? FuzzFixture.mutateBytes(bytes, &rng) : FuzzFixture.mutateJSON(bytes, &rng)
            let data = Data(mutated)
            let foundation = try? JSONDecoder().decode(Manifest.self, from: data)
            let mine = try? LazyJSONDecoder.decode(Manifest.self, from: data)
            let same = mine == foundation
            #expect(same, "iteration \(i): Foundation \(foundation == nil ? "refused" : "decoded"), LazyJSONDecoder \(mine == nil ? "refused" : "decoded")")
            if mine != nil { agreed += 1 }
        }
        #expect(agreed > 50)
    }

    /// The manifest fed to ``ManifestReader`` in pieces of `sizes` bytes (cycled).
    private func readPieces(_ bytes: [UInt8], _ sizes: [Int]) throws -> Manifest {
        var reader = ManifestReader()
        var at = 0, k = 0
        while at < bytes.count {
            let end = min(bytes.count, at + sizes[k % sizes.count])
            try bytes[at..<end].withUnsafeBytes { try reader.feed($0, source: "m") }
            at = end
            k += 1
        }
        return try Manifest.decode(reader, source: "m")
    }

    @Test("a manifest read as it streams, in pieces of any size, is the manifest; its repeated lists share storage")
    func streamed() throws {
        var manifest = RestoreFixtures.syntheticManifest()
        manifest.tables[0].name = "naïve \"table\"\t\u{1F600} [a, {b}] \\"
        let bytes = Array(try manifest.encoded())
        for sizes in [[1], [2, 3, 7], [4096], [bytes.count]] {
            #expect(try readPieces(bytes, sizes) == manifest, "pieces of \(sizes)")
        }
        let read = try readPieces(bytes, [13])
        let partitions = read.tables.filter { $0.kind == "partition" }
        #expect(partitions.count >= 2)
        partitions[0].columns.withUnsafeBufferPointer { a in
            partitions[1].columns.withUnsafeBufferPointer { b in #expect(a.baseAddress == b.baseAddress) }
        }
        // Compact JSON, arrays empty, keys in another order, an escaped key
        // (decoded with the rest), and a second "tables" (the first wins).
        let compact = Array(try JSONEncoder().encode(manifest))
        #expect(try readPieces(compact, [5]) == manifest)
        var empty = manifest
        empty.tables = []
        empty.units = []
        #expect(try readPieces(Array(try JSONEncoder().encode(empty)), [3]) == empty)
        let text = String(decoding: compact, as: UTF8.self)
        let escaped = text.replacingOccurrences(of: "\"tables\":", with: "\"t\\u0061bles\":")
        #expect(try readPieces(Array(escaped.utf8), [64]) == manifest)
        let twice = "{\"tables\":[]," + text.dropFirst()
        #expect(try readPieces(Array(twice.utf8), [9]).tables == [])
    }

    @Test("a damaged manifest read as it streams: the same refusals as the whole document's, syntax errors at the document's offset")
    func streamedDamage() throws {
        let bytes = Array(try RestoreFixtures.syntheticManifest().encoded())
        var rng = SplitMix(seed: 0x5EED_4EAD)
        var agreed = 0
        for i in 0..<400 {
            let mutated = i % 2 == 0 ? FuzzFixture.mutateBytes(bytes, &rng) : FuzzFixture.mutateJSON(bytes, &rng)
            // The whole document's decoding (which agrees with Foundation's:
            // above), and the header's checks.
            let whole = (try? LazyJSONDecoder.decode(Manifest.self, from: Data(mutated))).flatMap {
                $0.format == Manifest.formatName && (1...Manifest.currentFormatVersion).contains($0.formatVersion) ? $0 : nil
            }
            let streamed = try? readPieces(mutated, [Int(rng.next() % 300) + 1])
            #expect(streamed == whole, "iteration \(i): whole \(whole == nil ? "refused" : "decoded"), streamed \(streamed == nil ? "refused" : "decoded")")
            if streamed != nil { agreed += 1 }
        }
        #expect(agreed > 25)
        // Cut anywhere: never a manifest.
        for cut in stride(from: 0, to: bytes.count - 1, by: max(1, bytes.count / 97)) {
            #expect(throws: (any Error).self, "cut at \(cut)") { try readPieces(Array(bytes[0..<cut]), [17]) }
        }
        // A lost quote: the rest of the document reads as one string, which
        // never closes.
        let runaway = Array(#"{"format":"pgvault-archive","tables":[{"name":"#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        let unclosed = #expect(throws: PGVaultError.self) { try readPieces(runaway, [4096]) }
        #expect(unclosed?.message.contains("manifest.json is not valid JSON") == true)
        // A syntax error inside an element, and one after the streamed
        // arrays, are reported at their offsets in the document.
        let text = String(decoding: bytes, as: UTF8.self)
        for marker in ["\"rowDigest\"", "\"toolVersion\""] {
            let at = text.utf8.distance(from: text.startIndex, to: text.range(of: marker)!.lowerBound)
            var broken = bytes
            broken[at] = UInt8(ascii: "?")
            let error = #expect(throws: PGVaultError.self) { try readPieces(broken, [29]) }
            #expect(error?.message.contains("invalid JSON at byte \(at):") == true, "\(marker) at \(at): \(error?.message ?? "")")
        }
    }
}
