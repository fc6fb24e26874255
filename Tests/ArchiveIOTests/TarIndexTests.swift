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
        var entries = 0
        let index = try TarIndex(path: box["a.tar"], entriesRead: &entries)
        #expect(entries == files.count + 1)  // the directory too
        #expect(index.members.map(\.name) == files.map(\.name))
        let file = try TarMemberFile(path: box["a.tar"])
        // In reverse, so that no read benefits from the one before.
        for member in index.members.reversed() {
            #expect(member.offset != nil, "\(member.name)")
            var got: [UInt8] = []
            try file.read(index.member(member.name)!) { got.append(contentsOf: $0) }
            let expected = files.first { $0.name == member.name }!.data
            #expect(got == expected, "\(member.name)")
        }
        #expect(index.member("data/dup").map { m in
            var got: [UInt8] = []
            try? file.read(m) { got.append(contentsOf: $0) }
            return got
        } == Array("first".utf8))
        #expect(index.member("missing") == nil)
    }

    @Test("a tar cut short after it was indexed: the read says how much of the member it got")
    func truncatedAfterIndexing() throws {
        let box = try TestScratch.Folder("tarindex")
        defer { box.remove() }
        _ = try Self.writeTar(box["a.tar"])
        var entries = 0
        let index = try TarIndex(path: box["a.tar"], entriesRead: &entries)
        let tail = try #require(index.member("tail"))
        #expect(truncate(box["a.tar"], off_t(tail.offset! + 1000)) == 0)
        let file = try TarMemberFile(path: box["a.tar"])
        let error = #expect(throws: ArchiveError.self) { try file.read(tail) { _ in } }
        #expect(error.map { "\($0)" }?.contains("tail") == true)
    }
}
