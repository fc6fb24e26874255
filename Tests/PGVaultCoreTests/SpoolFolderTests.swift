import Foundation
@testable import PGVaultCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A spool left by a pgvault killed with SIGKILL (`backup -o -` spools a
/// whole backup) is removed by the next one; a running one's is not.
@Suite("spool folders")
struct SpoolFolderTests {
    @Test("a new spool is empty and owner-only; the spools of processes that have exited are removed, a live process's kept")
    func staleSpools() throws {
        let folder = try TestScratch.directory("spools")
        let dead = try Subprocess.spawn(["/bin/true"])
        _ = Subprocess.wait(dead)
        let live = getppid()
        for pid in [dead, live] {
            try FileManager.default.createDirectory(atPath: "\(folder)/pgvault-spool.partial-\(pid)/data", withIntermediateDirectories: true)
            try Data("rows".utf8).write(to: URL(fileURLWithPath: "\(folder)/pgvault-spool.partial-\(pid)/data/u1.copy.zst"))
        }
        try Data().write(to: URL(fileURLWithPath: "\(folder)/pgvault-spool.partial-notapid"))
        let mine = "\(folder)/pgvault-spool.partial-\(getpid())"
        try FileManager.default.createDirectory(atPath: mine + "/old", withIntermediateDirectories: true)

        #expect(try Files.spoolFolder(in: folder) == mine)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: folder))
        #expect(names == ["pgvault-spool.partial-\(live)", "pgvault-spool.partial-notapid", "pgvault-spool.partial-\(getpid())"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: mine).isEmpty)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: mine)[.posixPermissions] as? Int)
        #expect(mode == 0o700)
    }
}
