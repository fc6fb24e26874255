import ArchiveIO
import Foundation
import PGVaultCore
import TestSupport
import Testing

/// A tar-form archive is indexed once (issue 22: "a tar member found by
/// scanning from the start" made a restore's cost per member grow with the
/// archive).
@Suite("tar archive index")
struct TarArchiveIndexTests {
    @Test("members are read from the index: any order, and no header before them is read again")
    func readsFromIndex() throws {
        let box = try TestScratch.Folder("tararchive")
        defer { box.remove() }
        let path = box["b.tar"]
        let names = (0..<300).map { String(format: "data/u%05d.copy.zst", $0) }
        let writer = try ArchiveWriter(path: path, format: .tarPax)
        for (i, name) in names.enumerated() { try writer.addData(path: name, bytes: Array("member \(i)".utf8)) }
        try writer.close()

        let source = try Archive.open(path)
        #expect(try source.listMembers().map(\.name) == names)
        // Overwrite the first header: a reader that scans from the start
        // now fails at the first entry; one that uses the index never reads it.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Data(repeating: 0xFF, count: 512))
        try handle.close()
        for i in [299, 7, 150, 1] {
            var got: [UInt8] = []
            try source.readMember(names[i]) { got.append(contentsOf: $0) }
            #expect(got == Array("member \(i)".utf8))
        }
        #expect(throws: (any Error).self) { try source.readMember("data/none") { _ in } }
        // A new source indexes the damaged file, and says so.
        let fresh = try Archive.open(path)
        let error = #expect(throws: PGVaultError.self) { try fresh.readMember(names[1]) { _ in } }
        #expect(error.map { "\($0)" }?.contains("not a pgvault archive") == true)
    }
}
