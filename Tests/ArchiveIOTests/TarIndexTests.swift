import ArchiveIO
import Foundation
import TestSupport
import Testing

/// TarIndex and TarMemberFile: a member read from its offset is the member
/// libarchive streams, whatever the headers before it look like.
@Suite("tar index")
struct TarIndexTests {
    /// A pax tar with plain, empty, pax-header (long and non-ASCII names) and
    /// duplicate entries, and a directory.
    static func writeTar(_ path: String) throws -> [(name: String, data: [UInt8])] {
        let files: [(String, [UInt8])] = [
            ("manifest-first.json", Array("{}".utf8)),
            ("data/empty", []),
            ("data/" + String(repeating: "long-name-", count: 20) + "u00001.copy.zst", Pattern.bytes(0..<70_000)),
            ("data/한국어-🙂.copy", Pattern.bytes(5..<513)),
            ("data/exactly-512", Pattern.bytes(1..<513)),
            ("data/dup", Array("first".utf8)),
            ("data/dup", Array("second".utf8)),
            ("tail", Pattern.bytes(0..<200_001)),
        ]
        let writer = try ArchiveWriter(path: path, format: .tarPax)
        try writer.addDirectory(path: "data")
        for (name, data) in files { try writer.addData(path: name, bytes: data) }
        try writer.close()
        return files
    }

    @Test("every member read at its indexed offset equals libarchive's stream of it; duplicates resolve to the first")
    func offsetsMatchLibarchive() throws {
        let box = try TestScratch.Folder("tarindex")
        defer { box.remove() }
        let files = try Self.writeTar(box["a.tar"])
        let index = try TarIndex(path: box["a.tar"])
        // Read as far as asked: the first member is the first entry after the directory.
        #expect(try index.scan(until: "manifest-first.json")?.size == 2)
        #expect(index.entriesRead == 2 && index.members.count == 1)
        try index.scan()
        #expect(index.entriesRead == files.count + 1)  // the directory too
        #expect(index.members.map(\.name) == files.map(\.name))
        let file = try TarMemberFile(path: box["a.tar"])
        // In reverse, so that no read benefits from the one before.
        for member in index.members.reversed() {
            #expect(member.offset != nil, "\(member.name)")
            var got: [UInt8] = []
            try file.read(try #require(try index.scan(until: member.name))) { got.append(contentsOf: $0) }
            let expected = files.first { $0.name == member.name }!.data
            #expect(got == expected, "\(member.name)")
        }
        #expect(try index.scan(until: "data/dup").map { m in
            var got: [UInt8] = []
            try? file.read(m) { got.append(contentsOf: $0) }
            return got
        } == Array("first".utf8))
        #expect(try index.scan(until: "missing") == nil)
    }

    @Test("a tar cut short after it was indexed: the read says how much of the member it got")
    func truncatedAfterIndexing() throws {
        let box = try TestScratch.Folder("tarindex")
        defer { box.remove() }
        _ = try Self.writeTar(box["a.tar"])
        let index = try TarIndex(path: box["a.tar"])
        let tail = try #require(try index.scan(until: "tail"))
        #expect(truncate(box["a.tar"], off_t(tail.offset! + 1000)) == 0)
        let file = try TarMemberFile(path: box["a.tar"])
        let error = #expect(throws: ArchiveError.self) { try file.read(tail) { _ in } }
        #expect(error.map { "\($0)" }?.contains("tail") == true)
    }

    @Test("headers are read only as far as the member asked for: a symbolic link after it (a pg_basebackup tar) does not stop it")
    func readsOnlyAsFarAsNeeded() throws {
        let box = try TestScratch.Folder("tarindex")
        defer { box.remove() }
        try craftArchive(at: box["base.tar"], [
            CraftedEntry(name: "backup_label", kind: .file("START WAL LOCATION: 0/2000028")),
            CraftedEntry(name: "pg_tblspc/16384", kind: .symlink(to: "/srv/space")),
            CraftedEntry(name: "late", kind: .file("x")),
        ])
        let index = try TarIndex(path: box["base.tar"])
        let label = try #require(try index.scan(until: "backup_label"))
        var got: [UInt8] = []
        try TarMemberFile(path: box["base.tar"]).read(label) { got.append(contentsOf: $0) }
        #expect(String(decoding: got, as: UTF8.self) == "START WAL LOCATION: 0/2000028")
        // Going further reaches the link, which is refused as before.
        #expect(throws: ArchiveError.self) { try index.scan(until: "late") }
    }
}
