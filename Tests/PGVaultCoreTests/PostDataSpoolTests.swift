import CryptoDigest
import Foundation
@testable import PGVaultCore
import TestSupport
import Testing

/// The full restore keeps its post-data script on disk (one object's SQL is
/// read back when its step runs) and only what orders the objects in memory.
@Suite("restore: the post-data script spooled")
struct PostDataSpoolTests {
    static let objects = [
        SchemaScript.Object(
            index: 0, name: "users users_pkey", type: "CONSTRAINT", schema: "public",
            sql: "ALTER TABLE ONLY public.users\n    ADD CONSTRAINT users_pkey PRIMARY KEY (id);", tablespace: "''", accessMethod: nil),
        SchemaScript.Object(
            index: 1, name: "Überblick_idx", type: "INDEX", schema: "Ops",
            sql: "CREATE UNIQUE INDEX \"Überblick_idx\" ON \"Ops\".\"Job Runs\" USING btree (name);", tablespace: "fast", accessMethod: "heap"),
        SchemaScript.Object(
            index: 2, name: "messages_p1_pkey", type: "INDEX ATTACH", schema: "public",
            sql: "ALTER INDEX public.messages_pkey ATTACH PARTITION public.messages_p1_pkey;", tablespace: "''", accessMethod: nil),
        SchemaScript.Object(
            index: 3, name: "reactions reactions_fk", type: "FK CONSTRAINT", schema: "public",
            sql: "ALTER TABLE ONLY public.reactions\n    ADD CONSTRAINT reactions_fk FOREIGN KEY (m) REFERENCES public.messages(id) NOT VALID;",
            tablespace: "''", accessMethod: nil),
        SchemaScript.Object(
            index: 4, name: "pub", type: "PUBLICATION", schema: nil, sql: "CREATE PUBLICATION pub;", tablespace: "''", accessMethod: nil),
    ]

    @Test("each object reads back whole from any thread, in any order: schema and access method absent or not, SQL of several lines")
    func roundTrip() async throws {
        let spooled = try SpooledObject.spool(Self.objects)
        let read = try await withThrowingTaskGroup(of: (Int, SchemaScript.Object).self) { group in
            for k in spooled.indices.reversed() {
                let object = spooled[k]
                group.addTask { (k, try object.read()) }
            }
            var out: [Int: SchemaScript.Object] = [:]
            for try await (k, object) in group { out[k] = object }
            return out
        }
        for (k, object) in Self.objects.enumerated() { #expect(read[k] == object) }
    }

    @Test("the facts the graph orders objects by are read from their SQL as they stream by")
    func entries() throws {
        let spooled = try SpooledObject.spool(Self.objects)
        var script = PostDataScript()
        for (object, place) in zip(Self.objects, spooled) { script.add(object, spooled: place) }
        let e = script.entries
        let name = script.name
        #expect(name(e[0].relation) == "public.users" && name(e[0].builds) == "public.users_pkey" && e[0].unique && e[0].phase == .keys)
        #expect(name(e[1].relation) == "Ops.Job Runs" && name(e[1].builds) == "Ops.Überblick_idx" && e[1].unique)
        #expect(name(e[2].attachParent) == "public.messages_pkey" && name(e[2].attachChild) == "public.messages_p1_pkey")
        #expect(name(e[3].relation) == "public.reactions" && name(e[3].referenced) == "public.messages" && !e[3].unique)
        #expect(e[4].relation == -1 && e[4].builds == -1 && e[4].attachParent == -1 && e[4].phase == .rest)
        #expect(script.notValid == ["public reactions reactions_fk"])
        // One number for one name, wherever the script gives it.
        script.add(SchemaScript.Object(
            index: 5, name: "messages_p1_pkey", type: "CONSTRAINT", schema: "public",
            sql: "ALTER TABLE ONLY public.messages_p1\n    ADD CONSTRAINT messages_p1_pkey PRIMARY KEY (id);", tablespace: "''", accessMethod: nil),
            spooled: spooled[0])
        #expect(script.entries[5].builds == e[2].attachChild)
        #expect(Set(script.names).count == script.names.count)
    }

    @Test("a NUL byte, which no SQL holds, is refused as a damaged archive")
    func nulRefused() throws {
        var object = Self.objects[0]
        object.name = "a\0b"
        let error = #expect(throws: PGVaultError.self) { _ = try SpooledObject.spool([object]) }
        #expect(error?.kind == .archive && error?.description.contains("NUL byte") == true)
    }

    @Test("the archive is named by the SHA-256 of its manifest's bytes; a journal that named it by the manifest encoded again still matches")
    func archiveName() throws {
        let folder = try TestScratch.path("manifest-name")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let manifest = RestoreFixtures.syntheticManifest()
        // Written compact, as pgvault does not: its bytes differ from the manifest encoded again.
        let compact = try JSONEncoder().encode(manifest)
        try compact.write(to: URL(fileURLWithPath: folder + "/manifest.json"))
        let (read, digest) = try Archive.manifestAndDigest(of: try Archive.open(folder))
        #expect(digest == (try SHA2.hex(.sha256, of: [UInt8](compact))))
        let earlier = try SHA2.hex(.sha256, of: try read.encoded())
        #expect(earlier != digest)
        #expect(RestoreEngine.sameArchive(journal: digest, archiveID: digest, manifest: read))
        #expect(RestoreEngine.sameArchive(journal: earlier, archiveID: digest, manifest: read))
        #expect(!RestoreEngine.sameArchive(journal: String(repeating: "0", count: 64), archiveID: digest, manifest: read))
    }
}
