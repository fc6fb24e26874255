import ArchiveIO
import Foundation
import Testing
import TestSupport

@Suite("ArchiveIO")
struct ArchiveIOTests {
    private static let bigSize = 20 * 1024 * 1024

    /// Writes the standard test entries: a small file, a directory, a 20 MB
    /// file streamed in odd-sized chunks, and an empty file.
    private func writeSample(_ writer: ArchiveWriter, bigSizeKnown: Bool = true) throws {
        try writer.addData(path: "README.txt", bytes: Array("hello\n".utf8), mode: 0o644, mtime: 1_700_000_000)
        try writer.addDirectory(path: "data")
        try writer.addFile(path: "data/big.bin", size: bigSizeKnown ? Int64(Self.bigSize) : nil) { write in
            var offset = 0
            while offset < Self.bigSize {
                let end = min(offset + 100_003, Self.bigSize)
                try Pattern.bytes(offset..<end).withUnsafeBytes { try write($0) }
                offset = end
            }
        }
        try writer.addData(path: "data/empty", bytes: [])
        try writer.close()
    }

    /// Reads the standard test entries back, checking the big one chunk by chunk.
    private func checkSample(_ reader: ArchiveReader, bigSizeKnown: Bool = true) throws {
        let readme = try #require(try reader.nextEntry())
        #expect(readme.path == "README.txt")
        #expect(readme.type == .regularFile)
        #expect(readme.size == 6)
        #expect(readme.mode == 0o644)
        #expect(readme.mtime == 1_700_000_000)
        var text: [UInt8] = []
        try reader.readData { text.append(contentsOf: $0) }
        #expect(text == Array("hello\n".utf8))

        let dir = try #require(try reader.nextEntry())
        #expect(dir.path.hasPrefix("data"))
        #expect(dir.type == .directory)
        #expect(dir.mode == 0o700)

        let big = try #require(try reader.nextEntry())
        #expect(big.path == "data/big.bin")
        if bigSizeKnown { #expect(big.size == Int64(Self.bigSize)) }
        var offset = 0
        var mismatches = 0
        var largestChunk = 0
        try reader.readData { chunk in
            largestChunk = max(largestChunk, chunk.count)
            for byte in chunk {
                if byte != Pattern.byte(at: offset) { mismatches += 1 }
                offset += 1
            }
        }
        #expect(offset == Self.bigSize)
        #expect(mismatches == 0)
        #expect(largestChunk <= ArchiveReader.bufferSize)

        let empty = try #require(try reader.nextEntry())
        #expect(empty.path == "data/empty")
        var emptyData: [UInt8] = []
        try reader.readData { emptyData.append(contentsOf: $0) }
        #expect(emptyData.isEmpty)
        #expect(try reader.nextEntry() == nil)
        #expect(try reader.nextEntry() == nil, "stays at the end")
    }

    @Test func tarRoundTripWithLargeAndEmptyEntries() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        try writeSample(ArchiveWriter(path: box["backup.tar"], format: .tarPax))
        try checkSample(ArchiveReader(path: box["backup.tar"]))
    }

    @Test func zipRoundTripIncludingUnknownSize() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        try writeSample(ArchiveWriter(path: box["backup.zip"], format: .zip), bigSizeKnown: false)
        try checkSample(ArchiveReader(path: box["backup.zip"]), bigSizeKnown: false)
    }

    @Test(arguments: [ArchiveFormat.tarPax, .zip])
    func namesNeedingCareRoundTrip(format: ArchiveFormat) throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let names = [
            "with space/file name.txt", "ünïcödé/日本語.txt", "emoji 🎉.bin",
            String(repeating: "long-directory-name/", count: 8) + "deep.txt", // > 100 bytes: needs pax
        ]
        let writer = try ArchiveWriter(path: box["names"], format: format)
        for (index, name) in names.enumerated() {
            try writer.addData(path: name, bytes: Array(name.utf8) + [UInt8(index)])
        }
        try writer.close()
        let entries = try readAll(ArchiveReader(path: box["names"]))
        #expect(entries.map(\.info.path) == names)
        for (index, entry) in entries.enumerated() {
            #expect(entry.data == Array(names[index].utf8) + [UInt8(index)])
        }
    }

    @Test(arguments: ["../x", "/abs", "a/../../b", "x/..", "..", "", ".", "a\\..\\b", "C:/windows", "nul\0byte"])
    func writerRejectsUnsafeNames(name: String) throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let writer = try ArchiveWriter(path: box["a.tar"], format: .tarPax)
        let error = #expect(throws: ArchiveError.self) { try writer.addData(path: name, bytes: [1]) }
        guard case .invalidEntryName(let rejected, _)? = error else {
            Issue.record("expected invalidEntryName, got \(String(describing: error))")
            return
        }
        #expect(rejected == name)
        // Nothing was written, so the writer is still usable.
        try writer.addData(path: "fine", bytes: [2])
        try writer.close()
        #expect(try readAll(ArchiveReader(path: box["a.tar"])).map(\.info.path) == ["fine"])
    }

    @Test func tarNeedsSizesUpFront() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let writer = try ArchiveWriter(path: box["a.tar"], format: .tarPax)
        let error = #expect(throws: ArchiveError.self) { try writer.beginEntry(path: "x", size: nil) }
        #expect(error?.description.contains("needs its size") == true)
    }

    @Test(arguments: [99, 101])
    func wrongSizeFailsAndLeavesNoCompleteArchive(actual: Int) throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        do {
            let writer = try ArchiveWriter(path: box["a.tar"], format: .tarPax)
            try writer.addData(path: "first", bytes: [1, 2, 3])
            let error = #expect(throws: ArchiveError.self) {
                try writer.addFile(path: "short", size: 100) { write in
                    try [UInt8](repeating: 7, count: actual).withUnsafeBytes { try write($0) }
                }
            }
            #expect(error == .sizeMismatch(entry: "short", declared: 100, actual: Int64(actual)))
            #expect(throws: ArchiveError.self) { try writer.close() }
        } // the failed writer is dropped here
        // The partial file must not read as a complete archive.
        #expect(throws: ArchiveError.self) { _ = try readAll(ArchiveReader(path: box["a.tar"])) }
    }

    @Test func droppedWriterDoesNotCompleteTheArchive() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        do {
            let writer = try ArchiveWriter(path: box["a.tar"], format: .tarPax)
            try writer.beginEntry(path: "half", size: 10_000)
            try writer.write([UInt8](repeating: 1, count: 5_000))
        }
        #expect(throws: ArchiveError.self) { _ = try readAll(ArchiveReader(path: box["a.tar"])) }
    }

    @Test(arguments: [ArchiveFormat.tarPax, .zip])
    func archiveFilesAreOwnerOnlyAndNeverOverwritten(format: ArchiveFormat) throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let writer = try ArchiveWriter(path: box["out"], format: format)
        try writer.addData(path: "x", bytes: [1])
        try writer.close()
        #expect(try box.permissions("out") == 0o600)

        let error = #expect(throws: ArchiveError.self) { _ = try ArchiveWriter(path: box["out"], format: format) }
        #expect(error == .system(operation: "create archive file", path: box["out"], errno: EEXIST))
        #expect(error?.description.contains("File exists") == true)
    }

    @Test func truncatedTarGivesAClearError() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let writer = try ArchiveWriter(path: box["a.tar"], format: .tarPax)
        try writer.addData(path: "a", bytes: Pattern.bytes(0..<300_000))
        try writer.addData(path: "b", bytes: Pattern.bytes(0..<300_000))
        try writer.close()
        let whole = try Data(contentsOf: URL(fileURLWithPath: box["a.tar"]))
        try whole.prefix(450_000).write(to: URL(fileURLWithPath: box["cut.tar"]))

        let reader = try ArchiveReader(path: box["cut.tar"])
        #expect(try reader.nextEntry()?.path == "a")
        #expect(try reader.nextEntry()?.path == "b")
        let error = #expect(throws: ArchiveError.self) { try reader.readData { _ in } }
        guard case let .library(_, message, _, archive, entry)? = error else {
            Issue.record("expected a libarchive error, got \(String(describing: error))")
            return
        }
        #expect(message.localizedCaseInsensitiveContains("truncated"))
        #expect(archive == box["cut.tar"])
        #expect(entry == "b")
        // The reader refuses to go on after the error.
        #expect(throws: ArchiveError.self) { _ = try reader.nextEntry() }
    }

    @Test func garbageAndEmptyFilesAreNotArchives() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        try Data("definitely not an archive, just some text".utf8).write(to: URL(fileURLWithPath: box["junk"]))
        try Data().write(to: URL(fileURLWithPath: box["empty"]))
        for name in ["junk", "empty"] {
            let error = #expect(throws: ArchiveError.self) { _ = try readAll(ArchiveReader(path: box[name])) }
            #expect(error?.description.contains(box[name]) == true)
        }
        #expect(throws: ArchiveError.self) { _ = try ArchiveReader(path: box["missing"]) }
    }

    @Test(arguments: [ArchiveFormat.tarPax, .zip])
    func writesToAPipeAndReadsFromTheOtherEnd(format: ArchiveFormat) throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        let result = ThreadResult<String>()
        let thread = Thread {
            do {
                let writer = try ArchiveWriter(fileDescriptor: writeEnd, format: format)
                try writer.addData(path: "one.txt", bytes: Array("first".utf8))
                let size: Int64? = format == .zip ? nil : 3_000_000 // zip: streamed with a data descriptor
                try writer.addFile(path: "two.bin", size: size) { write in
                    for start in stride(from: 0, to: 3_000_000, by: 65_537) {
                        try Pattern.bytes(start..<min(start + 65_537, 3_000_000)).withUnsafeBytes { try write($0) }
                    }
                }
                try writer.close()
                result.set("ok")
            } catch {
                result.set("\(error)")
            }
            close(writeEnd)
        }
        thread.start()
        let entries = try readAll(ArchiveReader(fileDescriptor: readEnd))
        #expect(result.wait() == "ok")
        #expect(entries.map(\.info.path) == ["one.txt", "two.bin"])
        #expect(entries.first?.data == Array("first".utf8))
        #expect(entries.last?.data == Pattern.bytes(0..<3_000_000))
    }

    // MARK: Hostile archives

    @Test(arguments: [
        (CraftedEntry(name: "../evil", kind: .file("pwned")), "escapes the output folder (contains '..')"),
        (CraftedEntry(name: "sub/../../evil", kind: .file("pwned")), "escapes the output folder (contains '..')"),
        (CraftedEntry(name: "/tmp/archiveio-evil", kind: .file("pwned")), "is an absolute path"),
        (CraftedEntry(name: "..\\evil", kind: .file("pwned")), "contains a backslash"),
        (CraftedEntry(name: "link", kind: .symlink(to: "/etc")), "is a symbolic link (to '/etc')"),
        (CraftedEntry(name: "hard", kind: .hardlink(to: "/etc/passwd")), "is a hard link (to '/etc/passwd')"),
        (CraftedEntry(name: "fifo", kind: .fifo), "is a FIFO"),
    ])
    func readerAndExtractorRefuseHostileTars(entry: CraftedEntry, reason: String) throws {
        try checkHostile(entry: entry, reason: reason, zip: false)
    }

    @Test func readerRefusesHostileZip() throws {
        try checkHostile(
            entry: CraftedEntry(name: "../evil", kind: .file("pwned")),
            reason: "escapes the output folder (contains '..')", zip: true
        )
    }

    /// A crafted archive holds a harmless file, then `entry`: reading must
    /// refuse `entry` with `reason`, and extraction must write nothing outside
    /// the output folder.
    private func checkHostile(entry: CraftedEntry, reason: String, zip: Bool) throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        try FileManager.default.createDirectory(atPath: box["inner/out"], withIntermediateDirectories: true)
        let archive = box["hostile"]
        try craftArchive(at: archive, zip: zip, [CraftedEntry(name: "ok.txt", kind: .file("fine")), entry])

        let reader = try ArchiveReader(path: archive)
        #expect(try reader.nextEntry()?.path == "ok.txt")
        let error = #expect(throws: ArchiveError.self) { _ = try reader.nextEntry() }
        guard case let .unsafeEntry(name, why)? = error else {
            Issue.record("expected unsafeEntry, got \(String(describing: error))")
            return
        }
        #expect(name == entry.name)
        #expect(why.contains(reason))
        #expect(error?.description.hasSuffix("refusing to read this archive") == true)
        #expect(throws: ArchiveError.self) { _ = try reader.nextEntry() } // stays refused

        let before = box.listing()
        #expect(throws: ArchiveError.self) { _ = try ArchiveExtractor.extract(archiveAt: archive, to: box["inner/out"]) }
        #expect(box.listing() == (before + ["inner/out/ok.txt"]).sorted(), "only the harmless file appeared")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/archiveio-evil"))
    }

    @Test func extractorWritesFilesOwnerOnly() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let writer = try ArchiveWriter(path: box["a.tar"], format: .tarPax)
        try writer.addDirectory(path: "./dir/")
        try writer.addData(path: "dir/sub/file.txt", bytes: Array("content".utf8), mode: 0o777)
        try writer.addData(path: "./top.bin", bytes: Pattern.bytes(0..<200_000), mode: 0o755)
        try writer.close()
        try FileManager.default.createDirectory(atPath: box["out"], withIntermediateDirectories: false)

        let summary = try ArchiveExtractor.extract(archiveAt: box["a.tar"], to: box["out"])
        #expect(summary == ArchiveExtractor.Summary(files: 2, directories: 1, bytes: 200_007))
        #expect(try Data(contentsOf: URL(fileURLWithPath: box["out/dir/sub/file.txt"])) == Data("content".utf8))
        #expect(try Data(contentsOf: URL(fileURLWithPath: box["out/top.bin"])) == Data(Pattern.bytes(0..<200_000)))
        #expect(try box.permissions("out/dir/sub/file.txt") == 0o600)
        #expect(try box.permissions("out/top.bin") == 0o600)
        #expect(try box.permissions("out/dir") == 0o700)
        #expect(try box.permissions("out/dir/sub") == 0o700)

        // A second extraction into the same folder never overwrites.
        let error = #expect(throws: ArchiveError.self) {
            _ = try ArchiveExtractor.extract(archiveAt: box["a.tar"], to: box["out"])
        }
        guard case let .system(_, _, code)? = error else {
            Issue.record("expected a system error, got \(String(describing: error))")
            return
        }
        #expect(code == EEXIST)
    }

    @Test func extractorDoesNotFollowSymlinksAlreadyInTheFolder() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        try FileManager.default.createDirectory(atPath: box["out"], withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: box["elsewhere"], withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: box["out/sub"], withDestinationPath: box["elsewhere"])
        try FileManager.default.createSymbolicLink(atPath: box["out/file"], withDestinationPath: box["elsewhere/target"])

        for name in ["sub/evil.txt", "file"] {
            let writer = try ArchiveWriter(path: box["\(name.count).tar"], format: .tarPax)
            try writer.addData(path: name, bytes: Array("pwned".utf8))
            try writer.close()
            #expect(throws: ArchiveError.self) {
                _ = try ArchiveExtractor.extract(archiveAt: box["\(name.count).tar"], to: box["out"])
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: box["elsewhere"]).isEmpty)
    }

    @Test func apiMisuseIsReported() throws {
        let box = try TestScratch.Folder("archiveio")
        defer { box.remove() }
        let writer = try ArchiveWriter(path: box["a.zip"], format: .zip)
        #expect(throws: ArchiveError.self) { try writer.write([1]) }
        let fresh = try ArchiveWriter(path: box["b.zip"], format: .zip)
        try fresh.beginEntry(path: "open", size: nil)
        #expect(throws: ArchiveError.self) { try fresh.close() }

        let done = try ArchiveWriter(path: box["c.zip"], format: .zip)
        try done.close()
        let reader = try ArchiveReader(path: box["c.zip"])
        #expect(throws: ArchiveError.self) { try reader.readData { _ in } }
        #expect(try reader.nextEntry() == nil)
    }
}
