import Foundation
@testable import PGVaultCore
import Testing
import TestSupport
import ZstdStream

#if canImport(Glibc)
import Glibc
#endif

/// The local folder store on real files: the contract of docs/storage.md.
@Suite("storage: the local folder store")
struct StorageTests {
    struct Stop: Error {}

    static func store(_ name: String) throws -> (LocalFolderStore, TestScratch.Folder) {
        let folder = try TestScratch.Folder(name)
        return (LocalFolderStore(root: folder.path), folder)
    }

    static func read(_ store: LocalFolderStore, _ key: String, range: Range<Int64>? = nil) throws -> [UInt8] {
        var out: [UInt8] = []
        try store.get(key, range: range) { out.append(contentsOf: $0) }
        return out
    }

    /// Every file and folder under `root`, relative, including hidden ones.
    static func everything(_ root: String) -> [String] {
        ((FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? []).sorted()
    }

    @Test("put, get, head, list (recursive, delimited, string prefix) and delete")
    func roundTrip() throws {
        let (store, folder) = try Self.store("store-basic")
        defer { folder.remove() }
        let big = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Streamed in uneven chunks.
        let size = try store.put("b1/data/u00001.copy.zst") { write in
            var i = 0
            while i < big.count {
                let n = min(65_537, big.count - i)
                try big[i..<(i + n)].withUnsafeBytes { try write($0) }
                i += n
            }
        }
        #expect(size == Int64(big.count))
        try store.put("b1/manifest.json", bytes: Array("{}".utf8))
        try store.put("b2.tar", bytes: [1, 2, 3])
        try store.put("b10/manifest.json", bytes: [])

        #expect(try Self.read(store, "b1/data/u00001.copy.zst") == big)
        #expect(try store.bytes(of: "b1/manifest.json", limit: 10) == Array("{}".utf8))
        #expect(throws: PGVaultError.self) { try store.bytes(of: "b1/data/u00001.copy.zst", limit: 1000) }
        #expect(try store.head("b2.tar") == ObjectInfo(key: "b2.tar", size: 3))
        #expect(try store.head("b1") == nil)  // a folder is no object
        #expect(try store.head("nothing/here") == nil)

        #expect(try store.list(prefix: "").map(\.key) == ["b1/data/u00001.copy.zst", "b1/manifest.json", "b10/manifest.json", "b2.tar"])
        #expect(try store.list(prefix: "b1/").map(\.key) == ["b1/data/u00001.copy.zst", "b1/manifest.json"])
        #expect(try store.list(prefix: "b1").map(\.key).count == 3)  // a string prefix: b1/ and b10/
        #expect(try store.list(prefix: "missing/").isEmpty)
        let top = try store.list(prefix: "", delimited: true)
        #expect(top.objects == [ObjectInfo(key: "b2.tar", size: 3)])
        #expect(top.prefixes == ["b1/", "b10/"])
        #expect(try store.size(of: "b1/") == Int64(big.count + 2))

        // A consumer's own error passes through unchanged.
        #expect(throws: Stop.self) { try store.get("b2.tar") { _ in throw Stop() } }

        try store.delete("b1/data/u00001.copy.zst")
        try store.delete("b1/data/u00001.copy.zst")  // again: not an error
        #expect(!Files.exists(folder["b1/data"]))  // folders exist for their objects only
        try store.delete("b1/manifest.json")
        #expect(!Files.exists(folder["b1"]) && Files.exists(folder.path))
        let missing = #expect(throws: PGVaultError.self) { try Self.read(store, "b1/manifest.json") }
        #expect(missing?.isMissingObject == true && missing?.kind == .archive)
        #expect(missing?.description.contains("'b1/manifest.json'") == true, "\(String(describing: missing))")
    }

    @Test("a byte range is exactly those bytes; one past the end is an error, not a short read")
    func ranges() throws {
        let (store, folder) = try Self.store("store-range")
        defer { folder.remove() }
        let bytes = (0..<5_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try store.put("pack", bytes: bytes)
        for range: Range<Int64> in [0..<1, 10..<20, 1_048_570..<2_100_000, 4_999_999..<5_000_000, 0..<5_000_000, 17..<17] {
            #expect(try Self.read(store, "pack", range: range) == Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)]), "\(range)")
        }
        let error = #expect(throws: PGVaultError.self) { try Self.read(store, "pack", range: 4_999_990..<5_000_001) }
        #expect(error?.kind == .archive && error?.message.contains("5000000 bytes") == true, "\(String(describing: error))")
        #expect(throws: PGVaultError.self) { try Self.read(store, "pack", range: -1..<3) }
    }

    @Test("a put that fails midway leaves no object and no temporary file; an older object stays whole")
    func atomicPut() throws {
        let (store, folder) = try Self.store("store-atomic")
        defer { folder.remove() }
        #expect(throws: Stop.self) {
            try store.put("b/data/u1") { write in
                try [UInt8](repeating: 1, count: 1 << 20).withUnsafeBytes { try write($0) }
                throw Stop()
            }
        }
        #expect(try store.head("b/data/u1") == nil)
        #expect(Self.everything(folder.path).allSatisfy { !$0.contains(ObjectKey.temporaryMarker) }, "\(Self.everything(folder.path))")
        #expect(try store.list(prefix: "").isEmpty)

        try store.put("b/manifest.json", bytes: Array("old".utf8))
        #expect(throws: Stop.self) {
            try store.put("b/manifest.json") { write in
                try Array("new, half".utf8).withUnsafeBytes { try write($0) }
                throw Stop()
            }
        }
        #expect(try Self.read(store, "b/manifest.json") == Array("old".utf8))
        // A listing never shows a put in progress.
        var listed: [String] = []
        var onDisk: [String] = []
        try store.put("b/manifest.json") { _ in
            listed = try store.list(prefix: "b/").map(\.key)
            onDisk = Self.everything(folder["b"])
        }
        #expect(listed == ["b/manifest.json"])
        #expect(onDisk.contains { $0.contains(ObjectKey.temporaryMarker) }, "\(onDisk)")
        #expect(try store.head("b/manifest.json")?.size == 0)
    }

    @Test("a writer handle: written across calls, visible at its commit only; dropped or aborted, it leaves nothing")
    func writerHandle() throws {
        let (store, folder) = try Self.store("store-writer")
        defer { folder.remove() }
        let writer = try store.writer(for: "b/data/u1", ifAbsent: false)
        for part in [[UInt8](repeating: 1, count: 100), [2, 3]] { try part.withUnsafeBytes { try writer.write($0) } }
        #expect(writer.bytesWritten == 102)
        #expect(try store.head("b/data/u1") == nil)
        #expect(try writer.commit() == 102)
        #expect(try store.head("b/data/u1")?.size == 102)
        #expect(throws: PGVaultError.self) { try [UInt8(1)].withUnsafeBytes { try writer.write($0) } }

        let aborted = try store.writer(for: "b/data/u2", ifAbsent: false)
        try [UInt8(1)].withUnsafeBytes { try aborted.write($0) }
        aborted.abort()
        do {
            let dropped = try store.writer(for: "b/data/u3", ifAbsent: false)
            try [UInt8(1)].withUnsafeBytes { try dropped.write($0) }
        }
        #expect(try store.list(prefix: "").map(\.key) == ["b/data/u1"])
        #expect(Self.everything(folder.path) == ["b", "b/data", "b/data/u1"])
    }

    @Test("ifAbsent: a second write of a key fails, naming it, and the first object stays whole")
    func ifAbsent() throws {
        let (store, folder) = try Self.store("store-if-absent")
        defer { folder.remove() }
        try store.put("export.zip", bytes: [1, 2], ifAbsent: true)
        let error = #expect(throws: PGVaultError.self) { try store.put("export.zip", bytes: [3], ifAbsent: true) }
        #expect(error?.isExistingObject == true && error?.description.contains("'export.zip' already exists") == true, "\(String(describing: error))")
        #expect(try Self.read(store, "export.zip") == [1, 2])
        #expect(Self.everything(folder.path) == ["export.zip"])
        try store.put("export.zip", bytes: [4])  // without ifAbsent: replaced
        #expect(try Self.read(store, "export.zip") == [4])
    }

    /// A store with no fast path of its own: ``ObjectStore``'s default `adopt`
    /// (what a remote store does, an upload) over a local folder's writes.
    struct Streaming: ObjectStore {
        let inner: LocalFolderStore
        var location: String { inner.location }
        func writer(for key: String, ifAbsent: Bool) throws -> any ObjectWriter { try inner.writer(for: key, ifAbsent: ifAbsent) }
        func get(_ key: String, range: Range<Int64>?, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
            try inner.get(key, range: range, consume)
        }
        func head(_ key: String) throws -> ObjectInfo? { try inner.head(key) }
        func list(prefix: String, delimited: Bool) throws -> ObjectListing { try inner.list(prefix: prefix, delimited: delimited) }
        func delete(_ key: String) throws { try inner.delete(key) }
    }

    @Test("adopt: a finished file becomes the object (a local folder renames or links it; any other store streams it), and is gone",
          arguments: [false, true])
    func adopt(streaming: Bool) throws {
        let (local, folder) = try Self.store("store-adopt-\(streaming)")
        defer { folder.remove() }
        let store: any ObjectStore = streaming ? Streaming(inner: local) : local
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let file = folder.path + "/.u.zip.partial-host-1"
        #expect(FileManager.default.createFile(atPath: file, contents: Data(bytes)))
        #expect(try store.adopt(file: file, as: "out/u.zip", ifAbsent: true) == Int64(bytes.count))
        #expect(try Self.read(local, "out/u.zip") == bytes)
        #expect(Self.everything(folder.path) == ["out", "out/u.zip"])
        #expect(Fault.mode(folder.path + "/out/u.zip") == 0o600)

        // Taken: refused, the object stays whole, the file stays for the caller to remove.
        #expect(FileManager.default.createFile(atPath: file, contents: Data([9])))
        let error = #expect(throws: PGVaultError.self) { try store.adopt(file: file, as: "out/u.zip", ifAbsent: true) }
        #expect(error?.isExistingObject == true, "\(String(describing: error))")
        #expect(try Self.read(local, "out/u.zip") == bytes)
        // Replacing: the new bytes, whole.
        #expect(try store.adopt(file: file, as: "out/u.zip", ifAbsent: false) == 1)
        #expect(try Self.read(local, "out/u.zip") == [9])
        #expect(Self.everything(folder.path) == ["out", "out/u.zip"])
    }

    @Test("keys are relative names of plain segments", arguments: [
        "", "/abs", "a/../b", "..", "a//b", "a/", ".", "a/./b", "x\0y", "b/.manifest.json.put-tmp-1-2",
    ])
    func invalidKeys(key: String) throws {
        let (store, folder) = try Self.store("store-keys")
        defer { folder.remove() }
        for attempt: () throws -> Void in [
            { try store.put(key, bytes: [1]) }, { _ = try Self.read(store, key) }, { try store.delete(key) }, { _ = try store.head(key) },
        ] {
            let error = #expect(throws: PGVaultError.self) { try attempt() }
            #expect(error?.kind == .archive && error?.message.contains("is not a valid object key") == true, "\(String(describing: error))")
        }
        #expect(Self.everything(folder.path).isEmpty)
        #expect(store.localPath(of: key) == nil)
    }

    @Test("objects are owner-only files (0600) in owner-only folders (0700)")
    func modes() throws {
        let (store, folder) = try Self.store("store-modes")
        defer { folder.remove() }
        let old = umask(0)
        defer { umask(old) }
        try store.put("a/b/c", bytes: [1])
        for (path, mode) in [("a", 0o700), ("a/b", 0o700), ("a/b/c", 0o600)] {
            var st = stat()
            #expect(lstat(folder[path], &st) == 0)
            #expect(Int(st.st_mode & 0o777) == mode, "\(path): \(String(st.st_mode & 0o777, radix: 8))")
        }
    }

    @Test("a full filesystem (64 KiB tmpfs): an io error naming the key that says so; no object, no temporary file")
    func fullDisk() throws {
        let mount = try TestScratch.directory("store-tmpfs")
        defer { rmdir(mount) }
        let mounted = try Shell.capture(["/bin/mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mount])
        try #require(mounted.status == 0, "cannot mount a tmpfs here: \(mounted.stderr)")
        defer { _ = try? Shell.capture(["/bin/umount", "-l", mount]) }
        let store = LocalFolderStore(root: mount)
        let error = #expect(throws: PGVaultError.self) {
            try store.put("chat-x/data/u00001.copy.zst", bytes: [UInt8](repeating: 7, count: 1 << 20))
        }
        #expect(error?.kind == .io && (error?.underlying as? SystemCallError)?.code == ENOSPC, "\(String(describing: error))")
        let text = error?.description ?? ""
        #expect(text.contains("'chat-x/data/u00001.copy.zst'") && text.contains("No space left on device") && text.contains("is full"), "\(text)")
        #expect(try store.list(prefix: "").isEmpty)
        #expect(Self.everything(mount).allSatisfy { !$0.contains(ObjectKey.temporaryMarker) }, "\(Self.everything(mount))")
    }

    @Test("a failure inside an archive's staging prefix names the archive being written, not .partial-<pid>")
    func stagingNameHidden() {
        let store = LocalFolderStore(root: "/backups/chat")
        let text = store.failure("write", ".chat-20260101T000000.123Z.partial-4242/data/u00001.copy.zst", ENOSPC).description
        #expect(text.hasPrefix("cannot write /backups/chat/chat-20260101T000000.123Z (member data/u00001.copy.zst) (being written): No space left on device"), "\(text)")
        #expect(!text.contains(".partial-") && text.contains("is full"), "\(text)")
        #expect(store.failure("read", "chat-x/manifest.json", EIO).description.hasPrefix("cannot read object 'chat-x/manifest.json' in '/backups/chat': "))
    }

    @Test("archive members are objects under the staging prefix: whole at their commit; an aborted one leaves nothing")
    func membersThroughStore() throws {
        let (store, folder) = try Self.store("store-members")
        defer { folder.remove() }
        let destination = ArchiveDestination(stagingFolder: folder.path + "/.chat-x.partial-1")
        #expect(destination.prefix == ".chat-x.partial-1/" && (destination.store as? LocalFolderStore)?.root == folder.path)
        let bytes = [UInt8](repeating: 42, count: 300_000)
        let kept = try destination.member("data/u00001.copy.zst", level: 1)
        try bytes.withUnsafeBytes { try kept.compress($0) }
        #expect(try store.head(".chat-x.partial-1/data/u00001.copy.zst") == nil)  // not before its commit
        _ = try kept.finish()
        let dropped = try destination.member("data/u00002.copy.zst", level: 1)
        try bytes.withUnsafeBytes { try dropped.compress($0) }
        dropped.abort()
        #expect(try store.list(prefix: destination.prefix).map(\.key) == [".chat-x.partial-1/data/u00001.copy.zst"])
        #expect(try store.head(".chat-x.partial-1/data/u00001.copy.zst")?.size == kept.bytesWritten)
        #expect(Self.everything(folder.path).allSatisfy { !$0.contains(ObjectKey.temporaryMarker) }, "\(Self.everything(folder.path))")
        var roundTrip: [UInt8] = []
        try store.get(".chat-x.partial-1/data/u00001.copy.zst") { roundTrip.append(contentsOf: $0) }
        #expect(try ZstdDecompressor.decompress(bytes: roundTrip) == bytes)
    }

    @Test("deferred sync: members appear at their commit, their files' and folders' fsyncs wait for the flush, which names a file it cannot sync")
    func deferredSync() throws {
        let (_, folder) = try Self.store("store-deferred")
        defer { folder.remove() }
        let sync = DeferredSync()
        let destination = ArchiveDestination(stagingFolder: folder.path + "/.chat-x.partial-1", deferringSync: sync)
        for name in ["data/u00001.copy.zst", "data/u00002.copy.zst", "schema/pre-data.sql.zst"] {
            let member = try destination.member(name, level: 1)
            try [UInt8](repeating: 1, count: 1000).withUnsafeBytes { try member.compress($0) }
            _ = try member.finish()
            #expect(FileManager.default.fileExists(atPath: folder.path + "/.chat-x.partial-1/" + name))
        }
        let staging = folder.path + "/.chat-x.partial-1"
        #expect(sync.waiting.files == ["data/u00001.copy.zst", "data/u00002.copy.zst", "schema/pre-data.sql.zst"].map { staging + "/" + $0 })
        #expect(sync.waiting.folders == [folder.path, staging, staging + "/data", staging + "/schema"])
        try sync.flush()
        #expect(sync.waiting.files.isEmpty && sync.waiting.folders.isEmpty)
        #expect(Self.everything(folder.path).allSatisfy { !$0.contains(ObjectKey.temporaryMarker) })

        let member = try destination.member("data/u00003.copy.zst", level: 1)
        _ = try member.finish()
        unlink(staging + "/data/u00003.copy.zst")
        let error = #expect(throws: FileError.self) { try sync.flush() }
        #expect(error?.path == staging + "/data/u00003.copy.zst" && error?.code == ENOENT, "\(String(describing: error))")
    }

    @Test("an archive directory is read through the store: members listed and streamed, a missing one named")
    func archiveThroughStore() throws {
        let (store, folder) = try Self.store("store-archive")
        defer { folder.remove() }
        try store.put("b/data/u00001.copy.zst", bytes: [1, 2, 3])
        try store.put("b/schema/pre-data.sql.zst", bytes: [4])
        let source = try Archive.open("b", in: store)
        #expect(source.location == folder["b"])
        #expect(try source.listMembers().map(\.name) == ["data/u00001.copy.zst", "schema/pre-data.sql.zst"])
        var got: [UInt8] = []
        try source.readMember("data/u00001.copy.zst") { got.append(contentsOf: $0) }
        #expect(got == [1, 2, 3])
        let error = #expect(throws: PGVaultError.self) { _ = try Archive.manifest(of: source) }
        #expect(error?.description.contains("has no manifest.json") == true, "\(String(describing: error))")
        #expect(throws: PGVaultError.self) { try source.readMember("../x") { _ in } }
    }

    @Test("a prefix of members without a manifest (an interrupted prune) is listed as incomplete, never complete")
    func membersWithoutManifest() throws {
        let folder = try TestScratch.Folder("store-repo")
        defer { folder.remove() }
        let repo = try Repository(path: folder.path)
        try repo.store.put("chat-20260101T000000.000Z/data/u00001.copy.zst", bytes: [1])
        try repo.store.put("notes/README", bytes: [1])
        let (backups, others) = try repo.scan()
        #expect(backups.map(\.status) == ["incomplete"] && backups.first?.bytes == 1, "\(backups)")
        #expect(others == [Repository.Other(name: "notes", kind: .unknown)])
        #expect(try repo.prune(policy: .init(daily: 0, weekly: 0, monthly: 0), dryRun: false).isEmpty)
        #expect(try repo.store.list(prefix: "").count == 2)
    }
}
