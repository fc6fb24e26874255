import ArchiveIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

extension RestoreTests {
@Suite("restore: archives read whole-checked first, and from standard input", .serialized)
struct Input {
    enum Form: String, CaseIterable, Sendable { case directory, tar }

    @Test("a missing or cut member stops the restore before the target changes, naming the member and the archive", arguments: Form.allCases)
    func membersCheckedFirst(form: Form) async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let units = fixture.manifest.units.sorted { $0.compressedBytes < $1.compressedBytes }
        let postData = try #require(fixture.manifest.schema?.postData.member)
        // A unit loaded last (the smallest), the post-data schema (read after the load).
        for (member, cut) in [(units[0].member, false), (postData, true), (units[1].member, true)] {
            let path = try TestScratch.path("damaged") + (form == .tar ? ".tar" : "")
            switch form {
            case .directory:
                try FileManager.default.copyItem(atPath: fixture.archive, toPath: path)
                if cut {
                    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path + "/" + member))
                    try handle.truncate(atOffset: 10)
                    try handle.close()
                } else {
                    try FileManager.default.removeItem(atPath: path + "/" + member)
                }
            case .tar:
                try Self.tar(fixture, to: path) { name, bytes in name != member ? bytes : cut ? Array(bytes.prefix(10)) : nil }
            }
            let (target, conn) = try RestoreFixtures.emptyTarget(fixture)
            do {
                _ = try await RestoreEngine.run(RestoreOptions(archive: path, conninfo: target.conninfo))
                Issue.record("\(form) archive without a whole \(member) was restored")
            } catch {
                let text = "\(error)"
                #expect(text.contains("archive \(path) is not whole") && text.contains("Nothing was changed"), "\(text)")
                #expect(text.contains("member \(member) ") && text.contains(cut ? "has 10 bytes but the manifest records" : "is missing"), "\(text)")
            }
            #expect(try Self.userRelations(conn) == 0)
        }
    }

    @Test("a $TMPDIR with no room for the post-data script (a 4 KiB tmpfs) stops the restore before the target changes, naming the folder and the fix")
    func postDataSpoolFull() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let mount = try TestScratch.directory("spool-tmpfs")
        defer { rmdir(mount) }
        let mounted = try Shell.capture(["/bin/mount", "-t", "tmpfs", "-o", "size=4k,mode=0700", "tmpfs", mount])
        try #require(mounted.status == 0, "cannot mount a tmpfs here: \(mounted.stderr)")
        defer { _ = try? Shell.capture(["/bin/umount", "-l", mount]) }
        let (target, conn) = try RestoreFixtures.emptyTarget(fixture)
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = mount
        let run = try Shell.capture(
            [try Shell.pgvault(), "restore", fixture.archive, "--dbname", target.conninfo, "--quiet"], environment: environment)
        #expect(run.status != 0)
        #expect(run.stderr.contains("cannot write a temporary file in \(mount): No space left on device")
                && run.stderr.contains("point TMPDIR at a folder with room"), "\(run.stderr)")
        #expect(try Self.userRelations(conn) == 0)
        #expect(try conn.query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
        // Unlinked as soon as it was made: nothing is left in the folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: mount).isEmpty)
    }

    @Test("restore - reads a tar piped in (--jobs 3); an interrupted one resumes from the same archive piped in again")
    func standardInput() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let binary = try Shell.pgvault()
        let good = try TestScratch.path("piped") + ".tar"
        try Self.tar(fixture, to: good) { _, bytes in bytes }
        let spool = try TestScratch.path("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        func pipe(_ tar: String, into db: TestDatabase, _ extra: [String] = []) throws -> Shell.Output {
            var environment = ProcessInfo.processInfo.environment
            environment["TMPDIR"] = spool
            return try Shell.capture(
                ["/bin/sh", "-c", "f=$1; shift; cat \"$f\" | \"$0\" restore - \"$@\"", binary, tar,
                 "--dbname", db.conninfo, "--jobs", "3", "--json", "--quiet"] + extra,
                environment: environment)
        }

        let (target, conn) = try RestoreFixtures.emptyTarget(fixture)
        let result = try pipe(good, into: target)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("complete"), "\(result.stdout)")
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), conn)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)

        // The largest unit damaged (same size: the load starts, its checksum stops it).
        let unit = try #require(fixture.manifest.units.max { $0.rawBytes < $1.rawBytes })
        let damaged = try TestScratch.path("piped-damaged") + ".tar"
        try Self.tar(fixture, to: damaged) { name, bytes in
            guard name == unit.member else { return bytes }
            var b = bytes
            b[b.count / 2] ^= 0x55
            return b
        }
        let (second, secondConn) = try RestoreFixtures.emptyTarget(fixture)
        let failed = try pipe(damaged, into: second)
        #expect(failed.status == 2 && failed.stderr.contains(unit.member), "\(failed.stderr)")
        #expect(try secondConn.query("SELECT to_regnamespace('pgvault_restore') IS NOT NULL").scalar == "t")
        let resumed = try pipe(good, into: second, ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), secondConn)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)

        // Nothing piped in: said so.
        let (third, _) = try RestoreFixtures.emptyTarget(fixture)
        let empty = try pipe("/dev/null", into: third)
        #expect(empty.status == 2 && empty.stderr.contains("standard input held no data"), "\(empty.stderr)")
    }

    @Test("verify - checks a tar piped in, and finds a damaged member in one")
    func verifyStandardInput() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let binary = try Shell.pgvault()
        let unit = try #require(fixture.manifest.units.first)
        let good = try TestScratch.path("verify") + ".tar"
        let damaged = try TestScratch.path("verify-damaged") + ".tar"
        try Self.tar(fixture, to: good) { _, bytes in bytes }
        try Self.tar(fixture, to: damaged) { name, bytes in
            guard name == unit.member else { return bytes }
            var b = bytes
            b[b.count / 2] ^= 0x55
            return b
        }
        func pipe(_ tar: String) throws -> Shell.Output {
            try Shell.capture(["/bin/sh", "-c", "cat \"$1\" | \"$0\" verify - --json", binary, tar])
        }
        let ok = try pipe(good)
        #expect(ok.status == 0, "\(ok.stderr)\(ok.stdout)")
        let bad = try pipe(damaged)
        #expect(bad.status == 1 && bad.stdout.contains(unit.member), "\(bad.stderr)\(bad.stdout)")
    }

    /// The fixture's members in a tar (manifest.json last), each passed through
    /// `change` first: nil leaves it out.
    static func tar(_ fixture: RestoreFixtures.Source, to path: String, change: (String, [UInt8]) -> [UInt8]?) throws {
        var members = fixture.manifest.units.map(\.member)
        if let schema = fixture.manifest.schema { members.insert(contentsOf: [schema.preData.member, schema.postData.member], at: 0) }
        members.append(Manifest.memberName)
        let writer = try ArchiveWriter(path: path, format: .tarPax)
        for member in members {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.archive + "/" + member)))
            if let changed = change(member, bytes) { try writer.addData(path: member, bytes: changed) }
        }
        try writer.close()
    }

    /// Tables, sequences, views... outside the system schemas.
    static func userRelations(_ conn: PGConnection) throws -> Int {
        Int(try conn.query("""
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
            """).scalar ?? "") ?? -1
    }
}
}
