import ArchiveIO
import CArchive
import CryptoDigest
import Foundation
@testable import PGVaultCore
import TestSupport
import Testing
import ZstdStream

#if canImport(Glibc)
import Glibc
#endif

/// Bad input, tried for real: thousands of deterministic mutations of a valid
/// archive (directory and tar) and of its manifest, fed to the manifest parser,
/// the archive reader, the unit streamer, the verifier and the extractor.
/// Every failure prints the seed and iteration, so it reproduces.
@Suite("fuzz: archives and manifests", .serialized)
struct FuzzTests {
    static let seed: UInt64 = 0x5EED_2025_0F0F_0001

    @Test("thousands of mutated manifests: the parser returns or throws, never crashes, hangs or grows memory")
    func manifestParser() throws {
        let box = try TestScratch.Folder("fuzz")
        defer { box.remove() }
        let base = try FuzzFixture.makeDirectoryArchive(box["base"])
        let bytes = try base.encoded()
        let memoryBefore = ProcessMemory.highWaterKiB()
        var rng = SplitMix(seed: Self.seed)
        var decoded = 0, refused = 0, slowest = 0.0
        for i in 0..<2000 {
            let mutated = i % 2 == 0 ? FuzzFixture.mutateBytes(bytes, &rng) : FuzzFixture.mutateJSON(bytes, &rng)
            let start = Date()
            do {
                let m = try Manifest.decode(mutated, source: "fuzz#\(i)")
                decoded += 1
                _ = try? m.encoded()
            } catch let error as PGVaultError where error.kind == .archive {
                refused += 1
                #expect(error.description.hasPrefix("fuzz#\(i)"), "iteration \(i): \(error)")
            } catch {
                Issue.record("iteration \(i) (seed \(Self.seed)): not an archive PGVaultError: \(error)")
            }
            slowest = max(slowest, Date().timeIntervalSince(start))
        }
        #expect(decoded > 50 && refused > 500, "decoded \(decoded), refused \(refused)")
        #expect(slowest < 2, "slowest decode took \(slowest) s")
        #expect(ProcessMemory.highWaterKiB() - memoryBefore < 200 * 1024, "peak memory grew by more than 200 MiB")
    }

    @Test("mutated manifests in a real archive: reading, streaming units and verifying fail cleanly, never read outside")
    func manifestsInArchive() async throws {
        let box = try TestScratch.Folder("fuzz")
        defer { box.remove() }
        let dir = box["archive"]
        let base = try FuzzFixture.makeDirectoryArchive(dir)
        // A file outside the archive that a hostile member name would reach.
        try Data("secret outside\n".utf8).write(to: URL(fileURLWithPath: box["outside.copy.zst"]))
        let clean = try await Verifier.checkArchive(path: dir, jobs: 2, progress: nil)
        #expect(clean.ok, "\(clean.failures)")

        let bytes = try base.encoded()
        let memoryBefore = ProcessMemory.highWaterKiB()
        var rng = SplitMix(seed: Self.seed &+ 1)
        var slowest = 0.0, verified = 0
        for i in 0..<800 {
            let mutated = i % 3 == 0 ? FuzzFixture.mutateBytes(bytes, &rng) : FuzzFixture.mutateJSON(bytes, &rng)
            try Data(mutated).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
            let start = Date()
            let source = try Archive.open(dir)
            if let m = try? Archive.manifest(of: source) {
                for unit in m.units {
                    var delivered: UInt64 = 0
                    do {
                        try Archive.streamUnit(unit, from: source) { delivered += UInt64($0.count) }
                        // Only a unit whose member, size and SHA-256 all match streams to its end.
                        #expect(!unit.member.contains(".."), "iteration \(i): \(unit.member) was read")
                    } catch {}
                    #expect(delivered <= UInt64(max(unit.rawBytes, 0)) + 1 || delivered <= 1 << 20, "iteration \(i): \(delivered) bytes from \(unit.member)")
                }
                if i % 10 == 0 {
                    let report = try await Verifier.checkArchive(path: dir, jobs: 2, progress: nil)
                    verified += 1
                    if m != base { _ = report }  // a changed manifest may still be valid (e.g. a changed timestamp)
                    for finding in report.findings where !finding.isFailure {
                        #expect(!finding.object.contains(".."), "iteration \(i): \(finding)")
                    }
                }
            }
            slowest = max(slowest, Date().timeIntervalSince(start))
        }
        #expect(verified > 3, "\(verified)")
        #expect(slowest < 5, "slowest iteration took \(slowest) s")
        #expect(ProcessMemory.highWaterKiB() - memoryBefore < 200 * 1024, "peak memory grew by more than 200 MiB")
    }

    @Test("thousands of mutated tar archives: reader, verifier and extractor never crash and never write outside the output folder")
    func mutatedTars() async throws {
        let box = try TestScratch.Folder("fuzz")
        defer { box.remove() }
        _ = try FuzzFixture.makeDirectoryArchive(box["base"])
        try FuzzFixture.tar(directory: box["base"], to: box["base.tar"])
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: box["base.tar"])))
        let clean = try await Verifier.checkArchive(path: box["base.tar"], jobs: 2, progress: nil)
        #expect(clean.ok, "\(clean.failures)")

        let memoryBefore = ProcessMemory.highWaterKiB()
        var rng = SplitMix(seed: Self.seed &+ 2)
        var slowest = 0.0, extracted = 0, refused = 0
        for i in 0..<1000 {
            let tar = box["m.tar"]
            try Data(FuzzFixture.mutateBytes(original, &rng, tar: true)).write(to: URL(fileURLWithPath: tar))
            let start = Date()
            // The extractor, into a fresh folder inside a parent that holds nothing else.
            let parent = box["x\(i)"]
            try FileManager.default.createDirectory(atPath: parent + "/out", withIntermediateDirectories: true)
            do {
                _ = try ArchiveExtractor.extract(archiveAt: tar, to: parent + "/out")
                extracted += 1
            } catch {
                refused += 1
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: parent) == ["out"], "iteration \(i) wrote outside the output folder")
            for sub in FileManager.default.subpaths(atPath: parent + "/out") ?? [] {
                let attrs = try FileManager.default.attributesOfItem(atPath: parent + "/out/" + sub)
                let type = attrs[.type] as? FileAttributeType
                #expect(type == .typeRegular || type == .typeDirectory, "iteration \(i): \(sub) is \(String(describing: type))")
            }
            Files.removeTree(parent)
            // The archive reader and the unit streamer.
            if let source = try? Archive.open(tar), let m = try? Archive.manifest(of: source) {
                for unit in m.units { try? Archive.streamUnit(unit, from: source) { _ in } }
                _ = try? source.listMembers()
            }
            if i % 10 == 0 { _ = try await Verifier.checkArchive(path: tar, jobs: 2, progress: nil) }
            slowest = max(slowest, Date().timeIntervalSince(start))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.path).sorted() == ["base", "base.tar", "m.tar"])
        #expect(extracted > 0 && refused > 0, "extracted \(extracted), refused \(refused)")
        #expect(slowest < 5, "slowest iteration took \(slowest) s")
        #expect(ProcessMemory.highWaterKiB() - memoryBefore < 200 * 1024, "peak memory grew by more than 200 MiB")
    }

    @Test("hostile entries (.., absolute, links) are refused by reader, verifier and extractor; nothing is written outside")
    func hostileEntries() async throws {
        let box = try TestScratch.Folder("fuzz")
        defer { box.remove() }
        _ = try FuzzFixture.makeDirectoryArchive(box["base"])
        let manifest = try [UInt8](Data(contentsOf: URL(fileURLWithPath: box["base/manifest.json"])))
        let member = try [UInt8](Data(contentsOf: URL(fileURLWithPath: box["base/data/u1.copy.zst"])))
        // Outside the box: where an absolute name and a link out of the archive point.
        let evil = try TestScratch.path("fuzz-evil"), outside = try TestScratch.directory("fuzz-outside")
        defer { unlink(evil) }
        let hostile: [(String, [RawEntry])] = [
            ("dot-dot", [.file("../x", member)]),
            ("nested dot-dot", [.file("data/../../x", member)]),
            ("absolute", [.file(evil, member)]),
            ("etc-passwd", [.file("/etc/passwd", Array("pwned\n".utf8))]),
            ("symlink dir", [.symlink("data", outside), .file("data/pgvault-fuzz-through-link", member)]),
            ("symlink member", [.symlink("data/u1.copy.zst", "/etc/passwd")]),
            ("hardlink", [.hardlink("data/u1.copy.zst", "/etc/passwd")]),
            ("manifest symlink", [.symlink("manifest.json", "/etc/passwd")]),
        ]
        let passwd = try? Data(contentsOf: URL(fileURLWithPath: "/etc/passwd"))
        for (label, entries) in hostile {
            let tar = box["\(label).tar"]
            try FuzzFixture.rawTar(at: tar, [.directory("data")] + entries + [.file("manifest.json", manifest)])
            let parent = box["out-\(label)"]
            try FileManager.default.createDirectory(atPath: parent + "/out", withIntermediateDirectories: true)
            #expect(throws: ArchiveError.self, "\(label)") { _ = try ArchiveExtractor.extract(archiveAt: tar, to: parent + "/out") }
            #expect(try FileManager.default.contentsOfDirectory(atPath: parent) == ["out"], "\(label)")
            #expect(!Files.exists(evil) && !Files.exists(outside + "/pgvault-fuzz-through-link") && !Files.exists(box.path + "/x"), "\(label)")
            // The reader refuses the archive at the hostile entry; verify reports it, exits with a failure.
            let report = try await Verifier.checkArchive(path: tar, jobs: 1, progress: nil)
            #expect(!report.ok, "\(label): a hostile tar verified")
        }
        #expect((try? Data(contentsOf: URL(fileURLWithPath: "/etc/passwd"))) == passwd)

        // A directory archive whose manifest names members outside it: refused by name, never opened.
        let dir = box["base"]
        var m = try Manifest.decode(manifest, source: "base")
        try Data("outside\n".utf8).write(to: URL(fileURLWithPath: box["outside"]))
        let outsideSHA = try SHA2.hex(of: Array("outside\n".utf8))
        for name in ["../outside", "/etc/passwd", "data/../../outside", "data//u1.copy.zst", "./manifest.json"] {
            m.units[0].member = name
            m.units[0].sha256 = outsideSHA
            m.units[0].compressedBytes = 8
            let error = #expect(throws: PGVaultError.self) { try Archive.streamUnit(m.units[0], from: Archive.open(dir)) { _ in } }
            #expect(error?.description.contains("not a plain relative path") == true, "\(name): \(String(describing: error))")
        }
        // A member that is a symlink inside a directory archive is not followed.
        unlink(dir + "/data/u1.copy.zst")
        symlink(box["outside"], dir + "/data/u1.copy.zst")
        m.units[0].member = "data/u1.copy.zst"
        #expect(throws: PGVaultError.self) { try Archive.streamUnit(m.units[0], from: Archive.open(dir)) { _ in } }
    }

    @Test("a zstd bomb (1 GiB of zeros in a small member) is stopped at the unit's rawBytes")
    func zstdBomb() async throws {
        let box = try TestScratch.Folder("fuzz")
        defer { box.remove() }
        let dir = box["bomb"]
        var m = try FuzzFixture.makeDirectoryArchive(dir)
        // 1 GiB of zeros compresses to a few tens of KiB.
        let compressor = try ZstdCompressor(level: 3, checksum: true)
        var bomb: [UInt8] = []
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<1024 { try compressor.compress(zeros) { bomb.append(contentsOf: $0) } }
        try compressor.finish { bomb.append(contentsOf: $0) }
        #expect(bomb.count < 200_000, "\(bomb.count)")
        let member = m.units[0].member
        unlink(dir + "/" + member)
        try Data(bomb).write(to: URL(fileURLWithPath: dir + "/" + member))
        m.units[0].compressedBytes = Int64(bomb.count)
        m.units[0].sha256 = try SHA2.hex(of: bomb)
        m.units[0].rawBytes = 4096
        unlink(dir + "/manifest.json")
        try Data(try m.encoded()).write(to: URL(fileURLWithPath: dir + "/manifest.json"))

        let memoryBefore = ProcessMemory.highWaterKiB()
        let start = Date()
        var delivered = 0
        let error = #expect(throws: PGVaultError.self) {
            try Archive.streamUnit(m.units[0], from: Archive.open(dir)) { delivered += $0.count }
        }
        #expect(error?.description.contains(member) == true, "\(String(describing: error))")
        #expect(delivered <= 4097, "\(delivered) bytes delivered")
        #expect(Date().timeIntervalSince(start) < 2)
        let report = try await Verifier.checkArchive(path: dir, jobs: 2, progress: nil)
        #expect(!report.ok)
        #expect(report.findings.contains { $0.isFailure && $0.object.contains(member) }, "\(report.failures)")
        // The same bomb in a tar.
        try FuzzFixture.tar(directory: dir, to: box["bomb.tar"])
        let tarReport = try await Verifier.checkArchive(path: box["bomb.tar"], jobs: 1, progress: nil)
        #expect(!tarReport.ok)
        #expect(ProcessMemory.highWaterKiB() - memoryBefore < 200 * 1024, "peak memory grew by more than 200 MiB")
    }
}

// MARK: - Helpers

/// Peak resident memory of this process (VmHWM), in KiB.
enum ProcessMemory {
    static func highWaterKiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}

/// A fresh folder removed by `remove()`.
/// An entry of a hand-made tar, written with the raw libarchive API (no name checks).
enum RawEntry {
    case file(String, [UInt8])
    case directory(String)
    case symlink(String, String)
    case hardlink(String, String)
}

enum FuzzFixture {
    /// A valid directory archive (no schema) of the synthetic manifest's units,
    /// with real compressed members, sizes, SHA-256 and row digests.
    static func makeDirectoryArchive(_ dir: String) throws -> Manifest {
        var m = RestoreFixtures.syntheticManifest()
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        for i in m.units.indices {
            var text = ""
            for r in 0..<(3 + i) { text += "\(i * 100 + r)\trow \(i)-\(r) \\N\n" }
            let raw = Array(text.utf8)
            var digest = RowDigest()
            for line in text.split(separator: "\n") { Array(line.utf8).withUnsafeBytes { digest.add(row: $0) } }
            let member = try ZstdCompressor.compress(bytes: raw, level: 3, checksum: true)
            m.units[i].member = "data/u\(i + 1).copy.zst"
            m.units[i].rows = digest.rows
            m.units[i].rowDigest = digest.hex
            m.units[i].rawBytes = Int64(raw.count)
            m.units[i].compressedBytes = Int64(member.count)
            m.units[i].sha256 = try SHA2.hex(of: member)
            try Data(member).write(to: URL(fileURLWithPath: dir + "/" + m.units[i].member))
        }
        for t in m.tables.indices { m.tables[t].rows = m.units(of: m.tables[t]).reduce(0) { $0 + $1.rows } }
        try Data(try m.encoded()).write(to: URL(fileURLWithPath: dir + "/manifest.json"))
        return m
    }

    /// The directory archive as a tar, members in pgvault's order (manifest last).
    static func tar(directory: String, to path: String) throws {
        let m = try Archive.manifest(of: Archive.open(directory))
        var entries: [RawEntry] = []
        for unit in m.units {
            entries.append(.file(unit.member, try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + unit.member)))))
        }
        entries.append(.file("manifest.json", try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/manifest.json")))))
        try rawTar(at: path, entries)
    }

    static func rawTar(at path: String, _ entries: [RawEntry]) throws {
        guard let archive = archive_write_new() else { throw HarnessFailure("archive_write_new") }
        defer { archive_write_free(archive) }
        func check(_ rc: Int32, _ what: String) throws {
            if rc != ARCHIVE_OK { throw HarnessFailure("\(what): \(archive_error_string(archive).map { String(cString: $0) } ?? "?")") }
        }
        try check(archive_write_set_format_pax_restricted(archive), "format")
        try check(archive_write_open_filename(archive, path), "open")
        for item in entries {
            guard let entry = archive_entry_new() else { throw HarnessFailure("archive_entry_new") }
            defer { archive_entry_free(entry) }
            archive_entry_set_perm(entry, 0o644)
            var data: [UInt8] = []
            switch item {
            case .file(let name, let bytes):
                archive_entry_copy_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o100000)
                data = bytes
            case .directory(let name):
                archive_entry_copy_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o040000)
            case .symlink(let name, let target):
                archive_entry_copy_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o120000)
                archive_entry_copy_symlink(entry, target)
            case .hardlink(let name, let target):
                archive_entry_copy_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_copy_hardlink(entry, target)
            }
            archive_entry_set_size(entry, Int64(data.count))
            try check(archive_write_header(archive, entry), "header")
            if !data.isEmpty {
                guard archive_write_data(archive, data, data.count) == data.count else { throw HarnessFailure("data") }
            }
        }
        try check(archive_write_close(archive), "close")
    }

    /// Byte-level damage: flips, truncations, insertions, overwrites, duplicated runs.
    static func mutateBytes(_ input: [UInt8], _ rng: inout SplitMix, tar: Bool = false) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.int(4)) {
            guard !b.isEmpty else { break }
            // In a tar, aim at the headers (first 512 bytes of each block run) half the time.
            let at = tar && rng.int(2) == 0 ? (rng.int(max(1, b.count / 512)) * 512 + rng.int(512)) % b.count : rng.int(b.count)
            switch rng.int(7) {
            case 0: b[at] ^= UInt8(1 << rng.int(8))
            case 1: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b.removeSubrange(at...)
            case 3: b.insert(contentsOf: (0..<(1 + rng.int(64))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            case 4: b.removeSubrange(at..<min(b.count, at + 1 + rng.int(600)))
            case 5:
                let digits = Array(rng.pick(["9999999999999999999999", "-1", "0", "1e308", "NaN", "\"\"", "null", "[]", "{}"]).utf8)
                b.replaceSubrange(at..<min(b.count, at + digits.count), with: digits)
            default:
                let end = min(b.count, at + 1 + rng.int(2000))
                b.insert(contentsOf: b[at..<end], at: at)
            }
        }
        return b
    }

    /// Structural damage to the JSON: fields removed, types changed, huge or
    /// negative numbers, hostile member names, deep nesting.
    static func mutateJSON(_ input: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        guard var root = (try? JSONSerialization.jsonObject(with: Data(input))) as? [String: Any] else { return input }
        let hostileNames = ["../x", "/etc/passwd", "data/../../x", "data/../manifest.json", "", ".", "data/u1.copy.zst\0", "data\\..\\x", String(repeating: "a/", count: 5000)]
        let values: [Any] = [
            NSNull(), "", "x", -1, 0, Int64.max, Int64.min, 1e308, -1e308, true, [Any](), [String: Any](),
            String(repeating: "z", count: 100_000), Array(repeating: 1, count: 10_000),
        ]
        for _ in 0..<(1 + rng.int(3)) {
            root = mutate(root, depth: 0, &rng, values: values, names: hostileNames) as? [String: Any] ?? root
        }
        if rng.int(50) == 0 {
            // Deep nesting (a stack-exhaustion probe): 10 000 levels of arrays.
            return Array(("{\"format\":\"pgvault-archive\",\"formatVersion\":1,\"units\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}").utf8)
        }
        return (try? [UInt8](JSONSerialization.data(withJSONObject: root))) ?? input
    }

    private static func mutate(_ node: Any, depth: Int, _ rng: inout SplitMix, values: [Any], names: [String]) -> Any {
        if var dict = node as? [String: Any], !dict.isEmpty {
            let key = dict.keys.sorted()[rng.int(dict.count)]
            let child = dict[key]!
            if depth < 4, rng.int(3) != 0, child is [String: Any] || child is [Any] {
                dict[key] = mutate(child, depth: depth + 1, &rng, values: values, names: names)
            } else {
                switch rng.int(5) {
                case 0: dict.removeValue(forKey: key)
                case 1: dict[key] = key == "member" ? rng.pick(names) : rng.pick(values)
                case 2: dict[key] = rng.pick(names)
                case 3: if let n = child as? NSNumber { dict[key] = 0 &- n.int64Value &- 1 } else { dict[key] = rng.pick(values) }
                default: dict["unknown\(rng.int(9))"] = rng.pick(values)
                }
            }
            return dict
        }
        if var array = node as? [Any], !array.isEmpty {
            let i = rng.int(array.count)
            switch rng.int(4) {
            case 0: array.remove(at: i)
            case 1: array.append(array[i])
            default: array[i] = mutate(array[i], depth: depth + 1, &rng, values: values, names: names)
            }
            return array
        }
        return rng.pick(values)
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
