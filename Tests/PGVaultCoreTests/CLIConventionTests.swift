import Foundation
import TestSupport
import Testing

/// The conventions of docs/cli.md, checked over every subcommand in one table:
/// help examples that copy and paste, one JSON line on failure with the same
/// keys everywhere, one error prefix, one exit-code scheme, one range message
/// for numbers, the same defaults for `--jobs` and `--compress-level`.
@Suite("CLI: one convention across every subcommand (docs/cli.md)")
struct CLIConventionTests {
    static let subcommands = [
        "backup", "list", "prune", "restore", "verify", "archive-partitions", "restore-partitions",
        "wal-status", "export-user", "export-worker", "migrate", "generate", "check", "repo init", "repo unlock",
    ]

    /// The words that name the subcommand: `repo init` is two.
    static func commandWords(_ args: [String]) -> [String] {
        args.first == "repo" ? Array(args.prefix(2)) : Array(args.prefix(1))
    }

    // MARK: - Help

    @Test("every example in --help is one command line of its own, with options the command has", arguments: subcommands)
    func helpExamples(command: String) throws {
        let tool = try Self.dumpedHelp()
        let info = try #require(tool.subcommands[command], "no subcommand \(command) in --experimental-dump-help")
        let examples = Self.examples(in: info.discussion)
        #expect(!examples.isEmpty, "\(command) --help has no Examples section")
        let named = command.split(separator: " ").map(String.init)
        let rendered = try Self.pgvault(named + ["--help"]).stdout
        let renderedLines = Set(rendered.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        for example in examples {
            // The help generator must not have wrapped any of the example's lines.
            for line in example.lines {
                #expect(renderedLines.contains(line), "\(command): example line wrapped by the help layout: \(line)")
            }
            // The pipeline's command that runs this subcommand (an example may
            // pipe a backup into it, or run it over ssh).
            let words = Self.shellWords(example.command).first { words in
                words.indices.contains { words[$0] == "pgvault" && Array(words.dropFirst($0 + 1).prefix(named.count)) == named }
            }
            let run = try #require(words, "\(command): example does not run pgvault \(command): \(example.command)")
            let start = try #require(run.firstIndex(of: "pgvault")) + 1 + named.count
            for word in run[start...] where word.hasPrefix("--") {
                let name = String(word.dropFirst(2).prefix { $0 != "=" })
                #expect(info.options.contains(name), "\(command): example uses '--\(name)', which \(command) does not have: \(example.command)")
            }
        }
        #expect(info.discussion.contains("Exit status:"), "\(command) --help does not say its exit status")
    }

    @Test("--jobs defaults to 2 (1 to 64) and --compress-level to 2 (1 to 19) wherever they exist")
    func sharedDefaults() throws {
        let tool = try Self.dumpedHelp()
        for (command, info) in tool.subcommands {
            if info.options.contains("jobs") {
                #expect(info.defaults["jobs"] == "2", "\(command) --jobs default \(info.defaults["jobs"] ?? "none")")
            }
            if info.options.contains("compress-level") {
                #expect(info.defaults["compress-level"] == "2", "\(command) --compress-level default \(info.defaults["compress-level"] ?? "none")")
            }
        }
    }

    // MARK: - Numbers

    static let numberCases: [(command: [String], option: String, range: String)] = [
        (["backup", "-d", "dbname=x", "-o", "/tmp/unused", "--jobs", "-1"], "--jobs", "between 1 and 64"),
        (["backup", "-d", "dbname=x", "-o", "/tmp/unused", "--compress-level", "-3"], "--compress-level", "between 1 and 19"),
        (["restore", "/tmp/unused", "-d", "dbname=x", "--jobs", "-1"], "--jobs", "between 1 and 64"),
        (["verify", "/tmp/unused", "--jobs", "-2"], "--jobs", "between 1 and 64"),
        (["generate", "-d", "dbname=x", "--jobs", "-1"], "--jobs", "between 1 and 64"),
        (["prune", "--repo", "/tmp/unused", "--keep-daily", "-1"], "--keep-daily", "cannot be negative; give 0 or more"),
        (["archive-partitions", "-d", "dbname=x", "--table", "m", "--older-than", "1year", "--repo", "/tmp/unused", "--compress-level", "-1"], "--compress-level", "between 1 and 19"),
    ]

    @Test("a negative or out-of-range number names the option and its range, exit 64", arguments: numberCases)
    func negativeNumbers(command: [String], option: String, range: String) throws {
        let result = try Self.pgvault(command)
        #expect(result.status == 64, "\(command.joined(separator: " ")): exit \(result.status)")
        #expect(result.stderr.contains("'\(option)' must be \(range)") || result.stderr.contains("'\(option)' \(range)"),
                "\(command.joined(separator: " ")): \(result.stderr)")
        #expect(result.stderr.hasPrefix("pgvault \(command[0]): error: "), "\(result.stderr)")
    }

    // MARK: - Failures

    /// A server that is not there: the command fails before any work.
    static let absent = "host=/nonexistent-pgvault-socket-dir dbname=chat connect_timeout=2"

    static let failureCases: [(args: [String], database: String?)] = [
        (["backup", "-d", absent, "--output", "SCRATCH/out"], "chat"),
        (["restore", "/nonexistent/archive", "-d", absent], "chat"),
        (["verify", "/nonexistent/archive"], nil),
        (["verify", "-d", absent], "chat"),
        (["list", "--repo", "/nonexistent/repo"], nil),
        (["prune", "--repo", "/nonexistent/repo", "--keep-daily", "3"], nil),
        (["archive-partitions", "-d", absent, "--table", "messages", "--older-than", "12months", "--repo", "SCRATCH/out"], "chat"),
        (["restore-partitions", "-d", absent, "--repo", "SCRATCH", "--table", "messages", "--since", "2024-01"], "chat"),
        (["export-user", "-d", absent, "--user", "1", "--output", "SCRATCH/user.zip"], "chat"),
        (["export-worker", "-d", absent, "--output-dir", "SCRATCH/out", "--once"], "chat"),
        (["migrate", "-d", absent], "chat"),
        (["generate", "-d", absent, "--scale", "tiny"], "chat"),
        (["check", "--repo", "/nonexistent/repo"], nil),
        (["repo", "init", "--repo", "/proc/pgvault-cannot-create/repo", "--no-encryption", "--key-file", "SCRATCH/k"], nil),
        (["repo", "unlock", "--repo", "/nonexistent/repo"], nil),
    ]

    @Test("a failure: one error line with the command's prefix, exit 2, and with --json one object on one line", arguments: failureCases)
    func failure(args: [String], database: String?) throws {
        let command = Self.commandWords(args).joined(separator: " ")
        // Paths the command would write to, in a folder of this test's own.
        let scratch = try TestScratch.directory("cli-failure")
        let args = args.map { $0.replacingOccurrences(of: "SCRATCH", with: scratch) }
        let text = try Self.pgvault(args)
        #expect(text.status == 2, "\(command): exit \(text.status)\n\(text.stderr)")
        #expect(text.stdout.isEmpty, "\(command): a failure printed a result: \(text.stdout)")
        let errorLines = text.stderr.split(separator: "\n").filter { $0.contains("error:") }
        #expect(errorLines.count == 1 && errorLines[0].hasPrefix("pgvault \(command): error: "), "\(command): \(text.stderr)")

        let json = try Self.pgvault(args + ["--json"])
        #expect(json.status == 2, "\(command) --json: exit \(json.status)")
        let lines = json.stdout.split(separator: "\n")
        try #require(lines.count == 1, "\(command) --json: \(lines.count) lines on stdout: \(json.stdout)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any], "\(command): not an object")
        #expect(object["status"] as? String == "failed", "\(command): \(lines[0])")
        #expect(object["command"] as? String == command, "\(command): \(lines[0])")
        #expect(object["error"] is String, "\(command): \(lines[0])")
        let kinds = ["usage", "connection", "server", "archive", "io", "interrupted", "verification"]
        #expect(kinds.contains(object["kind"] as? String ?? ""), "\(command): no known kind: \(lines[0])")
        #expect(object["seconds"] is NSNumber, "\(command): seconds is not a number: \(lines[0])")
        if let database { #expect(object["database"] as? String == database, "\(command): \(lines[0])") }
        for key in object.keys { #expect(!key.contains("_"), "\(command): key \(key) is not camelCase") }
    }

    @Test("backup --output -: standard output is the archive, so a failure's JSON goes to standard error (issue 17, bug 7)")
    func failureBesideTheArchiveStream() throws {
        let result = try Self.pgvault(["backup", "-d", Self.absent, "--output", "-", "--json"])
        #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
        #expect(result.stdout.isEmpty, "the failure went into the tar stream: \(result.stdout)")
        #expect(result.stderr.contains(#""status":"failed""#), "\(result.stderr)")
        #expect(result.stderr.contains(#""kind":"connection""#), "no server there is a connection error: \(result.stderr)")
    }

    // MARK: - Successes

    @Test("a success: text unless --json; with --json one object on one line, camelCase keys, a status, seconds as numbers")
    func successes() throws {
        let db = try TestServers.database()
        let scratch = try TestScratch.directory("cli-conventions")
        let repo = scratch + "/repo", restored = try db.sibling()
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        let migrated = try Self.pgvault(["migrate", "-d", db.conninfo, "--source", RepoPaths.migrations, "--json"])
        Self.expectOneObject(migrated.stdout, command: "migrate")
        let generated = try Self.pgvault(["generate", "-d", db.conninfo, "--scale", "tiny", "--jobs", "1", "--json"])
        Self.expectOneObject(generated.stdout, command: "generate")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(generated.stdout.utf8)) as? [String: Any])
        let user = try #require(summary["heaviestUserID"] as? NSNumber, "generate --json: \(generated.stdout)")
        let vault = scratch + "/vault", key = scratch + "/vault.key"
        let made = try Self.pgvault(["repo", "init", "--repo", vault, "--no-encryption", "--key-file", key, "--json"])
        Self.expectOneObject(made.stdout, command: "repo init")
        let runs: [[String]] = [
            ["backup", "-d", db.conninfo, "--repo", repo, "--quiet"],
            ["backup", "-d", db.conninfo, "--repo", vault, "--key-file", key, "--quiet"],
            ["list", "--repo", repo],
            ["list", "--repo", vault, "--key-file", key],
            ["check", "--repo", vault, "--key-file", key],
            ["repo", "unlock", "--repo", vault],
            ["prune", "--repo", repo, "--keep-daily", "1", "--dry-run"],
            ["prune", "--repo", vault, "--key-file", key, "--keep-daily", "1", "--dry-run"],
            ["export-user", "-d", db.conninfo, "--user", user.stringValue, "--output", scratch + "/user.zip", "--quiet"],
        ]
        for args in runs {
            let command = Self.commandWords(args).joined(separator: " ")
            let json = try Self.pgvault(args + ["--json"])
            #expect(json.status == 0, "\(command) --json: exit \(json.status): \(json.stderr)")
            Self.expectOneObject(json.stdout, command: command)
            if command == "export-user" { try FileManager.default.removeItem(atPath: scratch + "/user.zip") }
            if command == "backup" { continue }  // one is enough
            let text = try Self.pgvault(args)
            #expect(text.status == 0, "\(command): exit \(text.status): \(text.stderr)")
            #expect(!text.stdout.hasPrefix("{"), "\(command) without --json printed JSON into a pipe: \(text.stdout)")
        }
        let backups = try Self.pgvault(["list", "--repo", repo, "--json"]).stdout
        let object = try #require(try JSONSerialization.jsonObject(with: Data(backups.utf8)) as? [String: Any])
        let entries = object["backups"] as? [[String: Any]] ?? []
        let first = try #require(entries.first?["path"] as? String, "list --json: \(backups)")
        let checks: [[String]] = [["verify", first], ["restore", first, "-d", restored.conninfo, "--quiet"]]
        for args in checks {
            let result = try Self.pgvault(args + ["--json"])
            #expect(result.status == 0, "\(args[0]) --json: exit \(result.status): \(result.stderr)")
            Self.expectOneObject(result.stdout, command: args[0])
        }
    }

    static func expectOneObject(_ stdout: String, command: String) {
        let lines = stdout.split(separator: "\n")
        #expect(lines.count == 1, "\(command) --json: \(lines.count) lines: \(stdout.prefix(300))")
        guard let line = lines.first,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            Issue.record("\(command) --json: not one JSON object: \(stdout.prefix(300))")
            return
        }
        #expect(object["status"] is String, "\(command): no status: \(line.prefix(300))")
        for (key, value) in object {
            #expect(!key.contains("_"), "\(command): key \(key) is not camelCase")
            if key.lowercased().hasSuffix("seconds") { #expect(value is NSNumber, "\(command): \(key) is not a number") }
        }
    }

    // MARK: - Helpers

    struct CommandInfo {
        var discussion: String
        var options: Set<String>
        var defaults: [String: String]
    }

    struct ToolInfo { var subcommands: [String: CommandInfo] }

    static func pgvault(_ args: [String]) throws -> Shell.Output {
        let binary = try Shell.pgvault()
        return try Shell.capture([binary] + args)
    }

    /// ArgumentParser's own description of every command and option.
    static func dumpedHelp() throws -> ToolInfo {
        let output = try pgvault(["--experimental-dump-help"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let command = try #require(root["command"] as? [String: Any])
        var tool = ToolInfo(subcommands: [:])
        // Nested subcommands (`repo init`) are named by their path.
        var subcommands: [(String, [String: Any])] = []
        func collect(_ parent: [String: Any], _ path: String) {
            for sub in parent["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                let full = path.isEmpty ? name : path + " " + name
                if sub["subcommands"] != nil { collect(sub, full) } else { subcommands.append((full, sub)) }
            }
        }
        collect(command, "")
        for (name, sub) in subcommands {
            var info = CommandInfo(discussion: sub["discussion"] as? String ?? "", options: [], defaults: [:])
            for argument in sub["arguments"] as? [[String: Any]] ?? [] {
                for n in argument["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                    if let long = n["name"] as? String {
                        info.options.insert(long)
                        if let value = argument["defaultValue"] as? String { info.defaults[long] = value }
                    }
                }
            }
            tool.subcommands[name] = info
        }
        return tool
    }

    struct Example {
        var lines: [String]
        var command: String
    }

    /// The commands under "Examples:": indented lines, a trailing backslash
    /// continuing a command on the next line.
    static func examples(in discussion: String) -> [Example] {
        let lines = discussion.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "Examples:" }) else { return [] }
        var out: [Example] = []
        var current: Example?
        for line in lines[(start + 1)...] {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
            guard line.hasPrefix("  ") else { break }
            let body = line.trimmingCharacters(in: .whitespaces)
            let continued = body.hasSuffix("\\")
            let text = continued ? String(body.dropLast()).trimmingCharacters(in: .whitespaces) : body
            if var c = current {
                c.lines.append(line)
                c.command += " " + text
                current = c
            } else {
                current = Example(lines: [line], command: text)
            }
            if !continued, let c = current {
                out.append(c)
                current = nil
            }
        }
        return out
    }

    /// The words of each command of a shell pipeline or list, with quotes
    /// removed; a redirection ends its command's words.
    static func shellWords(_ text: String) -> [[String]] {
        var commands: [[String]] = []
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var redirected = false
        func endWord() {
            if inWord && !redirected { words.append(word) }
            word = ""
            inWord = false
        }
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
                continue
            }
            switch c {
            case "'", "\"": quote = c; inWord = true
            case " ", "\t": endWord()
            case "|", ";", "&":
                endWord()
                if !words.isEmpty { commands.append(words) }
                words = []
                redirected = false
            case ">", "<":
                endWord()
                redirected = true
            default: word.append(c); inWord = true
            }
        }
        endWord()
        if !words.isEmpty { commands.append(words) }
        return commands
    }
}
