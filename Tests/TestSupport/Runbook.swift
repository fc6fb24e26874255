import Foundation

/// A runbook of docs/runbooks/ read the way a doc test reads it: its fenced
/// blocks, each marked `run` (the test runs it) or `illustrative` (it cannot run
/// in a test: cron, systemd, another host), and the bash script that runs the
/// `run` blocks in order. The convention is in docs/runbooks/README.md.
public struct Runbook: Sendable {
    public enum Mode: String, Sendable {
        case run, illustrative, unmarked
    }

    public struct Block: Sendable {
        /// 1-based, in the order of the file.
        public var number: Int
        /// The lines of the opening and the closing fence (1-based).
        public var line: Int
        public var endLine: Int
        public var language: String?
        public var mode: Mode
        /// The lines between the fences, with their line numbers.
        public var body: [(number: Int, text: String)]
    }

    public let name: String
    public let lines: [String]
    public let blocks: [Block]
    /// What does not follow the convention, as `name:line: what`.
    public let problems: [String]

    /// Languages whose blocks show data or output, never a command: no mark needed.
    public static let dataLanguages: Set<String> = ["text", "yaml", "json"]
    /// Languages a `run` block may have: `sh` runs in bash, `sql` in psql.
    public static let runnableLanguages: Set<String> = ["sh", "sql"]
    /// Words that start a command: one on an indented line outside a fence is a
    /// command that no test would run.
    static let commandWords = ["pgvault ", "psql ", "pg_", "createdb ", "dropdb ", "vacuumdb ", "initdb ", "$ "]

    public init(name: String, text: String) {
        self.name = name
        lines = text.components(separatedBy: "\n")
        var blocks: [Block] = []
        var problems: [String] = []
        var open: (fence: String, indent: Int, block: Block)?
        var previousBlank = true
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let indent = raw.prefix { $0 == " " }.count
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if var current = open {
                if trimmed.hasPrefix(current.fence), trimmed.allSatisfy({ $0 == current.fence.first }) {
                    current.block.endLine = number
                    blocks.append(current.block)
                    open = nil
                } else {
                    current.block.body.append((number, String(raw.dropFirst(min(indent, current.indent)))))
                    open = current
                }
                continue
            }
            if let fence = Self.fence(trimmed) {
                let words = trimmed.dropFirst(fence.count).split(separator: " ").map(String.init)
                let language = words.first
                var mode = Mode.unmarked
                for word in words.dropFirst() {
                    if let m = Mode(rawValue: word), m != .unmarked, mode == .unmarked {
                        mode = m
                    } else {
                        problems.append("\(name):\(number): '\(word)' in the info string '\(words.joined(separator: " "))' is not `run` or `illustrative` (given once)")
                    }
                }
                switch (language, mode) {
                case (nil, _):
                    problems.append("\(name):\(number): a fenced block without an info string: mark output `text`, commands `sh run` or `sh illustrative`")
                case (let l?, .unmarked) where !Self.dataLanguages.contains(l):
                    problems.append("\(name):\(number): a `\(l)` block is neither `run` nor `illustrative`: mark it (docs/runbooks/README.md)")
                case (let l?, .run) where !Self.runnableLanguages.contains(l):
                    problems.append("\(name):\(number): a `\(l)` block cannot run: only `sh run` and `sql run` blocks run")
                default:
                    break
                }
                let block = Block(number: blocks.count + 1, line: number, endLine: number, language: language, mode: mode, body: [])
                open = (fence, indent, block)
                continue
            }
            if indent >= 4, previousBlank || lines[index - 1].hasPrefix("    "),
               Self.commandWords.contains(where: { trimmed.hasPrefix($0) }) {
                problems.append("\(name):\(number): an indented command outside a fenced block: put it in a `sh run` or `sh illustrative` block")
            }
            previousBlank = trimmed.isEmpty
        }
        if let open {
            problems.append("\(name):\(open.block.line): the fenced block opened here is never closed")
        }
        self.blocks = blocks
        self.problems = problems
    }

    /// The fence that opens a block (three or more backticks or tildes), if `line` is one.
    static func fence(_ line: String) -> String? {
        for c in ["`", "~"] where line.hasPrefix(c + c + c) {
            return String(line.prefix { String($0) == c })
        }
        return nil
    }

    public func count(_ mode: Mode) -> Int { blocks.filter { $0.mode == mode }.count }

    /// Every command of the `sh run` blocks: continuation lines joined, runs of
    /// spaces made one.
    public var runCommands: Set<String> {
        var out: Set<String> = []
        for block in blocks where block.mode == .run && block.language == "sh" {
            var pending = ""
            for (_, text) in block.body {
                if text.hasSuffix("\\") {
                    pending += text.dropLast() + " "
                    continue
                }
                out.insert(Self.collapsed(pending + text))
                pending = ""
            }
        }
        return out
    }

    /// Lines of `cron` blocks whose command is not, word for word, a command of
    /// a `sh run` block (so the command cron runs is the one the test ran). The
    /// schedule (five fields or an @word) and, in an /etc/cron.d file, the user
    /// are not part of the command.
    public var cronProblems: [String] {
        let commands = runCommands
        var problems: [String] = []
        for block in blocks where block.language == "cron" {
            for (number, text) in block.body {
                let words = text.split(separator: " ", omittingEmptySubsequences: true)
                guard let first = words.first, !first.hasPrefix("#"), !(words.count == 1 && first.contains("=")) else { continue }
                let schedule = first.hasPrefix("@") ? 1 : 5
                let command = Self.collapsed(words.dropFirst(schedule).joined(separator: " "))
                let withoutUser = Self.collapsed(words.dropFirst(schedule + 1).joined(separator: " "))
                if !commands.contains(command) && !commands.contains(withoutUser) {
                    problems.append("\(name):\(number): the command of this cron line is not one of a `sh run` block: run the same command, word for word, in one")
                }
            }
        }
        return problems
    }

    static func collapsed(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// Markers the script prints (on standard output, where standard error goes too).
    public enum Marker {
        public static let block = "PGVAULT-RUNBOOK-BLOCK"
        public static let failed = "PGVAULT-RUNBOOK-FAILED"
        public static let unexpected = "PGVAULT-RUNBOOK-UNEXPECTED-STATUS"
        public static let done = "PGVAULT-RUNBOOK-DONE"
    }

    /// The bash script that runs every `run` block in order, in one shell (so a
    /// variable set in one block is there in the next), stopping at the first
    /// command that fails. Line N of the script is line N of the runbook, so
    /// bash's $LINENO names the runbook's line; the first line (a heading)
    /// carries the prelude. `substitute` turns the runbook's placeholders into
    /// the test's values; `sqlConninfo` is where `sql run` blocks run (psql).
    ///
    /// A command whose line ends with a comment `# exits N` must exit with N
    /// (a check that finds a problem on purpose, say); any other must succeed.
    public func script(substitute: (String) -> String, sqlConninfo: String) -> String {
        var out = Array(repeating: "", count: lines.count)
        out[0] = [
            "exec 2>&1", "set -eEuo pipefail",
            "trap 'echo \"\(Marker.failed) line=$LINENO status=$? command=$BASH_COMMAND\"' ERR",
            "__pgv_expect() { if [ \"$2\" != \"$1\" ]; then echo \"\(Marker.unexpected) line=$3 expected=$1 status=$2\"; exit 1; fi; }",
        ].joined(separator: "; ")
        for block in blocks where block.mode == .run {
            guard block.line > 1 else { continue }
            let marker = "echo \"\(Marker.block) \(block.number) line=\(block.line)\""
            if block.language == "sql" {
                out[block.line - 1] = "\(marker); psql -X -q -v ON_ERROR_STOP=1 -d \(Self.shellQuoted(sqlConninfo)) <<'PGVAULT_SQL_END'"
                for (number, text) in block.body { out[number - 1] = substitute(text) }
                out[block.endLine - 1] = "PGVAULT_SQL_END"
                continue
            }
            out[block.line - 1] = marker
            var commandStart: Int?
            for (number, text) in block.body {
                if commandStart == nil { commandStart = number }
                out[number - 1] = substitute(text)
                let continues = text.hasSuffix("\\")
                if let (command, status) = Self.expectedStatus(text), let start = commandStart {
                    out[number - 1] = substitute(command) + " ; } || __pgv_rc=$?; __pgv_expect \(status) \"$__pgv_rc\" \(number)"
                    out[start - 1] = "__pgv_rc=0; { " + out[start - 1]
                }
                if !continues { commandStart = nil }
            }
        }
        return out.joined(separator: "\n") + "\necho \(Marker.done)\n"
    }

    /// `cmd ...   # exits 2: why` → ("cmd ...", 2).
    static func expectedStatus(_ line: String) -> (String, Int)? {
        guard let range = line.range(of: #"\s#\s*exits\s+[0-9]+\b.*$"#, options: .regularExpression) else { return nil }
        let comment = line[range]
        guard let digits = comment.range(of: "[0-9]+", options: .regularExpression), let status = Int(comment[digits]) else { return nil }
        return (String(line[..<range.lowerBound]), status)
    }

    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// What a run of the script printed, judged: nil when every block ran, else
    /// where it stopped (runbook, block, line, the command) and the output before.
    public func failure(output: String, status: Int32) -> String? {
        let outputLines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if status == 0, outputLines.contains(Marker.done) { return nil }
        var block = "no block"
        var located = "exit status \(status) before the end"
        for line in outputLines {
            if line.hasPrefix(Marker.block + " ") {
                block = "block " + line.dropFirst(Marker.block.count + 1)
            } else if line.hasPrefix(Marker.failed + " ") || line.hasPrefix(Marker.unexpected + " ") {
                located = String(line)
                break
            }
        }
        let lineNumber = located.range(of: #"line=[0-9]+"#, options: .regularExpression).flatMap { Int(located[$0].dropFirst(5)) }
        let text = lineNumber.flatMap { $0 >= 1 && $0 <= lines.count ? lines[$0 - 1].trimmingCharacters(in: .whitespaces) : nil } ?? ""
        let tail = outputLines.filter { !$0.hasPrefix(Marker.block) }.suffix(40).joined(separator: "\n")
        return "\(name):\(lineNumber.map(String.init) ?? "?") (\(block)): \(located)\n  the runbook says: \(text)\n--- last output ---\n\(tail)"
    }
}
