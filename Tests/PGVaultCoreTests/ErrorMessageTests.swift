import Foundation
import PGVaultCore
import Testing
import TestSupport

/// What the user sees when a path they gave is wrong, through the real binary:
/// every message names that path, says what is wrong with it and what to do,
/// and never shows a Foundation error dump, an errno, or an internal staging
/// name. No database is needed: each case fails before connecting.
@Suite("error messages")
struct ErrorMessageTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var testDescription: String
        /// Prepares the scratch folder; returns the path the user gives.
        var setup: @Sendable (String) throws -> String
        /// The arguments, given that path.
        var arguments: @Sendable (String) -> [String]
        /// Words saying what is wrong and what to do.
        var says: [String]
        /// docs/cli.md: 2 the command could not do its work; 1 a check found damage.
        var status: Int32 = 2
    }

    static let noServer = "dbname=nosuch host=/nonexistent-pgvault-socket-dir"

    static func file(_ name: String, _ bytes: [UInt8] = Array("not a folder\n".utf8)) -> @Sendable (String) throws -> String {
        { dir in
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
            return dir + "/" + name
        }
    }

    static func missing(_ name: String) -> @Sendable (String) throws -> String { { dir in dir + "/" + name } }

    /// A real tar (several entries, none a manifest) cut in the middle.
    static let truncatedTar: @Sendable (String) throws -> String = { dir in
        var rng = SystemRandomNumberGenerator()
        for i in 0..<3 {
            try Data((0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: URL(fileURLWithPath: "\(dir)/m\(i)"))
        }
        try Shell.run(["/bin/tar", "-cf", dir + "/full.tar", "-C", dir, "m0", "m1", "m2"])
        let full = try Data(contentsOf: URL(fileURLWithPath: dir + "/full.tar"))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.tar"))
        return dir + "/cut.tar"
    }

    static let cases: [Case] = [
        Case(testDescription: "list --repo FILE", setup: file("repo"), arguments: { ["list", "--repo", $0] },
             says: ["is not a folder", "give the folder that holds the backups"]),
        Case(testDescription: "prune --repo FILE", setup: file("repo"), arguments: { ["prune", "--repo", $0] },
             says: ["is not a folder", "give the folder that holds the backups"]),
        Case(testDescription: "list --repo TYPO", setup: missing("typo"), arguments: { ["list", "--repo", $0] },
             says: ["does not exist", "check the path"]),
        Case(testDescription: "list --cold --repo TYPO", setup: missing("typo"), arguments: { ["list", "--cold", "--repo", $0] },
             says: ["does not exist", "check the path"]),
        Case(testDescription: "prune --repo TYPO", setup: missing("typo"), arguments: { ["prune", "--repo", $0] },
             says: ["does not exist", "check the path"]),
        Case(testDescription: "verify random.bin", setup: file("random.bin", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }),
             arguments: { ["verify", $0] }, says: ["is not a pgvault archive (not a tar file or archive directory)", "check the path"], status: 1),
        Case(testDescription: "verify a truncated tar", setup: truncatedTar, arguments: { ["verify", $0] },
             says: ["is truncated", "copy it again"], status: 1),
        Case(testDescription: "verify an invalid manifest", setup: { dir in
                 try FileManager.default.createDirectory(atPath: dir + "/archive", withIntermediateDirectories: false)
                 try Data("{\"format\": \"pgvault-archive\", ".utf8).write(to: URL(fileURLWithPath: dir + "/archive/manifest.json"))
                 return dir + "/archive"
             }, arguments: { ["verify", $0] }, says: ["manifest.json is not valid JSON", "use another backup"], status: 1),
        Case(testDescription: "verify a folder without manifest", setup: { dir in
                 try FileManager.default.createDirectory(atPath: dir + "/archive", withIntermediateDirectories: false)
                 return dir + "/archive"
             }, arguments: { ["verify", $0] }, says: ["has no manifest.json", "check the path"], status: 1),
        Case(testDescription: "verify TYPO", setup: missing("typo"), arguments: { ["verify", $0] },
             says: ["does not exist", "check the path"]),
        Case(testDescription: "migrate --source MISSING", setup: missing("migrations"), arguments: { ["migrate", "--source", $0] },
             says: ["does not exist", "pass --source DIR"]),
        Case(testDescription: "verify --relations MISSING", setup: missing("relations.txt"),
             arguments: { ["verify", "-d", noServer, "--relations", $0] }, says: ["No such file or directory", "check the path"]),
        Case(testDescription: "migrate --source FILE", setup: file("migrations"), arguments: { ["migrate", "--source", $0] },
             says: ["is not a folder", "pass --source DIR"]),
        Case(testDescription: "backup --output in a missing folder", setup: missing("nosuch/chat"),
             arguments: { ["backup", "-d", noServer, "--output", $0, "--quiet"] }, says: ["does not exist", "create it or choose another path"]),
        Case(testDescription: "backup --output that exists", setup: file("chat.tar"),
             arguments: { ["backup", "-d", noServer, "--output", $0, "--quiet"] }, says: ["already exists", "Choose a new path"]),
        Case(testDescription: "backup --metrics-file in a missing folder", setup: missing("nosuch/pgvault.prom"),
             arguments: { ["backup", "-d", noServer, "--output", ($0 as NSString).deletingLastPathComponent + "-out", "--metrics-file", $0, "--quiet"] },
             says: ["does not exist", "create it or choose another path"]),
        Case(testDescription: "backup --repo FILE", setup: file("repo"),
             arguments: { ["backup", "-d", noServer, "--repo", $0, "--quiet"] }, says: ["is not a folder", "give the folder"]),
    ]

    @Test("a wrong path is named, with what is wrong and what to do", arguments: cases)
    func pathErrors(_ c: Case) throws {
        let binary = try Shell.pgvault()
        let dir = try TestScratch.directory("errors")
        let path = try c.setup(dir)
        let out = try Shell.capture([binary] + c.arguments(path))
        let text = out.stderr + out.stdout
        #expect(out.status == c.status, "\(text)")
        #expect(text.contains(path), "does not name \(path): \(text)")
        for words in c.says { #expect(text.contains(words), "\(words): \(text)") }
        for bad in ["Error Domain=", "errno", ".partial-", "(null)", "..", "Unknown error"] {
            #expect(!text.contains(bad), "\(bad): \(text)")
        }
        // Nothing was left behind next to the path (no staging folder, no archive).
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!left.contains { $0.hasPrefix(".") }, "\(left)")
    }

    @Test("a file error inside a staging folder names the archive being written, not .partial-<pid>")
    func stagingNameHidden() {
        let inside = FileError(operation: "write", path: "/backups/chat/.chat-20260101T000000.123Z.partial-4242/data/u00001.copy.zst", code: ENOSPC)
        #expect(inside.description.hasPrefix("cannot write /backups/chat/chat-20260101T000000.123Z (member data/u00001.copy.zst) (being written): No space left on device"), "\(inside)")
        let tar = FileError(operation: "fsync", path: "out/.chat.tar.partial-7.tar", code: EIO)
        #expect(tar.description.hasPrefix("cannot fsync out/chat.tar (being written): "), "\(tar)")
        #expect(FileError(operation: "write", path: "/tmp/.x.partial-notapid/y", code: EIO).description.contains(".x.partial-notapid"))
    }

    struct Usage: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var says: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    /// A negative number used to read as an unknown flag ("Missing value for
    /// '--jobs <jobs>'"); every numeric option now takes it and says its range.
    static let usage: [Usage] = [
        Usage(arguments: ["backup", "--output", "x", "--jobs", "-1"], says: "'--jobs' must be between 1 and 64"),
        Usage(arguments: ["backup", "--output", "x", "-j", "-1"], says: "'--jobs' must be between 1 and 64"),
        Usage(arguments: ["backup", "--output", "x", "--compress-level", "-3"], says: "'--compress-level' must be between 1 and 19"),
        Usage(arguments: ["backup", "--output", "x", "--split-size", "-1"], says: "'--split-size' must be between 1 and 1048576"),
        Usage(arguments: ["backup", "--output", "x.tar", "--format", "directory"], says: "ends in .tar but '--format directory'"),
        Usage(arguments: ["prune", "--repo", "x", "--keep-daily", "-1"], says: "'--keep-daily' cannot be negative"),
        Usage(arguments: ["prune", "--repo", "x", "--keep-weekly", "-1"], says: "'--keep-weekly' cannot be negative"),
        Usage(arguments: ["prune", "--repo", "x", "--keep-monthly", "-1"], says: "'--keep-monthly' cannot be negative"),
        Usage(arguments: ["verify", "x", "--jobs", "-1"], says: "'--jobs' must be between 1 and 64"),
        Usage(arguments: ["generate", "-d", "dbname=x", "--jobs", "-1"], says: "'--jobs' must be between 1 and 64"),
        Usage(arguments: ["generate", "-d", "dbname=x", "--users", "-5"], says: "--users must be at least 10"),
        Usage(arguments: ["export-user", "-d", "dbname=x", "--user", "id:1", "--output", "x.zip", "--batch-size", "-1"], says: "'--batch-size' must be between 1 and 100000"),
    ]

    @Test("a negative or contradicting number is a usage error that names the option and its range", arguments: usage)
    func usageErrors(_ u: Usage) throws {
        let binary = try Shell.pgvault()
        let out = try Shell.capture([binary] + u.arguments)
        #expect(out.status == 64, "\(out.stderr)")
        #expect(out.stderr.contains(u.says), "\(out.stderr)")
        #expect(!out.stderr.contains("Missing value"), "\(out.stderr)")
    }
}
