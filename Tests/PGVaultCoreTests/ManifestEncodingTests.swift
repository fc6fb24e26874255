import CryptoDigest
import Foundation
@testable import PGVaultCore
import Testing

/// manifest.json is written a table and a unit at a time
/// (``Manifest/encode(into:)``); its bytes must be those of Foundation's
/// encoder given the whole manifest, which is what earlier versions wrote
/// and what names an archive to a restore's journal.
@Suite("manifest encoding")
struct ManifestEncodingTests {
    private func whole(_ manifest: Manifest) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(manifest)) + [0x0A]
    }

    private func variants() -> [(String, Manifest)] {
        let base = RestoreFixtures.syntheticManifest()
        var odd = base
        odd.tables[0].name = "line\nbreak \"quoted\" naïve 😀 / slash"
        odd.tables[0].keyColumns = []
        odd.selection.tables = ["public.users", "public.events"]
        odd.units[0].chunks = [.init(id: "c1", pack: 0, offset: 0, length: 10, rawLength: 20)]
        odd.units[1].fingerprint = "f"
        odd.packs = [.init(id: "p1", size: 100, headerBytes: 0)]
        odd.copySettings = ["DateStyle": "ISO, YMD"]
        var noTables = base
        noTables.tables = []
        var noUnits = base
        noUnits.units = []
        var empty = base
        empty.tables = []
        empty.units = []
        var one = base
        one.tables = [base.tables[0]]
        one.units = [base.units[0]]
        return [("synthetic", base), ("odd strings, chunks, packs, a selection", odd), ("no tables", noTables),
                ("no units", noUnits), ("neither", empty), ("one of each", one)]
    }

    @Test("the bytes equal Foundation's encoding of the whole manifest, and decode back to it")
    func sameBytes() throws {
        for (name, manifest) in variants() {
            let streamed = try manifest.encoded()
            #expect(streamed == (try whole(manifest)), "\(name)")
            #expect(try manifest.encodedCount() == streamed.count, "\(name)")
            #expect(try Manifest.decode(streamed, source: name) == manifest, "\(name)")
        }
    }

    @Test("a large manifest goes out in pieces of about 1 MiB, the same bytes")
    func pieces() throws {
        var manifest = RestoreFixtures.syntheticManifest()
        let partition = manifest.tables.first { $0.kind == "partition" }!
        let unit = manifest.units[0]
        for i in 0..<3000 {
            var t = partition
            t.name = "p\(i)"
            manifest.tables.append(t)
            var u = unit
            u.table = t.name
            u.id = "x\(i)"
            manifest.units.append(u)
        }
        var pieces: [Int] = []
        var joined: [UInt8] = []
        try manifest.encode { pieces.append($0.count); joined.append(contentsOf: $0) }
        #expect(joined == (try whole(manifest)))
        #expect(pieces.count > 1 && pieces.dropLast().allSatisfy { $0 >= 1 << 20 && $0 < (1 << 20) + 64 * 1024 }, "\(pieces)")
    }

    @Test("a journal written under the earlier archive id (the manifest encoded again) still names the archive")
    func journalIdentity() throws {
        let manifest = RestoreFixtures.syntheticManifest()
        let reencoded = try SHA2.hex(.sha256, of: try whole(manifest))
        #expect(RestoreEngine.sameArchive(journal: reencoded, archiveID: "other", manifest: manifest))
        #expect(RestoreEngine.sameArchive(journal: "id", archiveID: "id", manifest: manifest))
        #expect(!RestoreEngine.sameArchive(journal: "id", archiveID: "other", manifest: manifest))
    }
}
