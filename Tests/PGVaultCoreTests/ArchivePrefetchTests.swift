import Foundation
@testable import PGVaultCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The restore's advice to the kernel on a directory archive's members: in
/// order, within its window of the loads begun, and with the pages in the
/// page cache afterwards. Real files in a scratch folder.
@Suite("restore: prefetching a directory archive's members")
struct ArchivePrefetchTests {
    static let mib: Int64 = 1 << 20

    /// `count` members of `bytes` each under data/ in a new folder.
    static func archive(_ count: Int, bytes: Int) throws -> (TestScratch.Folder, [(name: String, bytes: Int64)]) {
        let folder = try TestScratch.Folder("prefetch")
        try FileManager.default.createDirectory(atPath: folder["data"], withIntermediateDirectories: true)
        var members: [(name: String, bytes: Int64)] = []
        for i in 0..<count {
            let name = "data/\(i).copy.zst"
            var bytesOfMember = [UInt8](repeating: 0, count: bytes)
            for k in stride(from: 0, to: bytes, by: 4096) { bytesOfMember[k] = UInt8(truncatingIfNeeded: i &+ k) }
            try Data(bytesOfMember).write(to: URL(fileURLWithPath: folder[name]))
            members.append((name, Int64(bytes)))
        }
        return (folder, members)
    }

    /// Waits until `count` members are advised, then checks that no more
    /// are: the window is full, or advising was stopped.
    static func expectHolds(at count: Int, _ prefetch: ArchivePrefetch) {
        #expect(prefetch.waitForAdvised(count, timeout: 10) == count)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(prefetch.advised == count)
    }

    @Test("advises members in order, at most the window ahead of the loads begun")
    func window() throws {
        let (folder, members) = try Self.archive(10, bytes: Int(Self.mib))
        defer { folder.remove() }
        let prefetch = try #require(ArchivePrefetch(.path(folder.path), members: members, windowBytes: 3 * Self.mib))
        defer { prefetch.stop() }
        prefetch.start()
        // The window is full: it waits for the loaders.
        Self.expectHolds(at: 3, prefetch)
        prefetch.began(bytes: [Self.mib])
        Self.expectHolds(at: 4, prefetch)
        prefetch.began(bytes: Array(repeating: Self.mib, count: 6))
        #expect(prefetch.waitForAdvised(10, timeout: 10) == 10)
    }

    @Test("a member larger than the per-member cap counts only its first bytes")
    func largeMember() throws {
        let (folder, members) = try Self.archive(3, bytes: Int(ArchivePrefetch.perMemberBytes + Self.mib))
        defer { folder.remove() }
        // A window of two capped members: the third waits for a load to begin.
        let prefetch = try #require(ArchivePrefetch(.path(folder.path), members: members, windowBytes: 2 * ArchivePrefetch.perMemberBytes))
        defer { prefetch.stop() }
        prefetch.start()
        Self.expectHolds(at: 2, prefetch)
        prefetch.began(bytes: [members[0].bytes])
        #expect(prefetch.waitForAdvised(3, timeout: 10) == 3)
    }

    @Test("stop ends advising: after it nothing more is advised, even when loads begin")
    func stop() throws {
        let (folder, members) = try Self.archive(6, bytes: Int(Self.mib))
        defer { folder.remove() }
        let prefetch = try #require(ArchivePrefetch(.path(folder.path), members: members, windowBytes: 2 * Self.mib))
        prefetch.start()
        Self.expectHolds(at: 2, prefetch)
        // What the restore does when it ends or is interrupted (SIGINT,
        // SIGTERM cancel its workers, and the scheduler's exit stops this).
        prefetch.stop()
        prefetch.began(bytes: Array(repeating: Self.mib, count: 6))
        Self.expectHolds(at: 2, prefetch)
    }

    @Test("the advised pages are in the page cache")
    func pagesResident() throws {
        let (folder, members) = try Self.archive(4, bytes: Int(2 * Self.mib))
        defer { folder.remove() }
        // Written back and dropped from the cache first (on a file system
        // that keeps pages, such as tmpfs, they simply stay).
        for member in members {
            let fd = open(folder[member.name], O_RDONLY)
            try #require(fd >= 0)
            fsync(fd)
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            close(fd)
        }
        let prefetch = try #require(ArchivePrefetch(.path(folder.path), members: members))
        defer { prefetch.stop() }
        prefetch.start()
        #expect(prefetch.waitForAdvised(4, timeout: 10) == 4)
        // The advice starts the reads; they finish shortly after.
        let deadline = Date().addingTimeInterval(10)
        var resident = members.map { _ in 0.0 }
        repeat {
            resident = try members.map { try Self.residentFraction(folder[$0.name]) }
            if resident.allSatisfy({ $0 == 1 }) { break }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        #expect(resident == [1, 1, 1, 1])
    }

    @Test("only a local directory, and never a member outside it")
    func refusals() throws {
        let (folder, members) = try Self.archive(1, bytes: 4096)
        defer { folder.remove() }
        #expect(ArchivePrefetch(.path(folder["data/0.copy.zst"]), members: members) == nil)
        #expect(ArchivePrefetch(.path(folder["missing"]), members: members) == nil)
        #expect(ArchivePrefetch(.path(folder.path), members: []) == nil)
        // A name that escapes the folder is left out, not opened.
        let prefetch = try #require(ArchivePrefetch(.path(folder.path), members: [("../outside", 4096)] + members))
        defer { prefetch.stop() }
        prefetch.start()
        #expect(prefetch.waitForAdvised(2, timeout: 2) == 1)
    }

    /// The share of the file's pages in the page cache (mincore).
    static func residentFraction(_ path: String) throws -> Double {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var st = stat()
        try #require(fstat(fd, &st) == 0)
        let size = Int(st.st_size)
        let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
        try #require(map != MAP_FAILED)
        defer { munmap(map, size) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pages = (size + page - 1) / page
        var vector = [UInt8](repeating: 0, count: pages)
        try #require(mincore(map, size, &vector) == 0)
        return Double(vector.filter { $0 & 1 == 1 }.count) / Double(pages)
    }
}
