import Foundation

/// A relation between tables that the schema does not declare as a foreign key
/// (say `messages.author_id → users.id` kept without a constraint), checked
/// for orphan rows exactly like a declared one.
///
/// `from` and `to` are `schema.table(column, ...)`, e.g. `public.messages(author_id)`.
/// They are usually read from a relations file; see ``fileFormat``.
public struct DeclaredRelation: Codable, Sendable, Equatable, CustomStringConvertible {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    public var description: String { "\(from) -> \(to)" }

    /// One end of a relation: a table and its columns.
    public struct End: Sendable, Equatable {
        public var schema: String
        public var table: String
        public var columns: [String]

        public var qualifiedName: String { "\(schema).\(table)" }

        /// `schema.table(col, ...)`, quoting only names that need it.
        public var text: String {
            DeclaredRelation.name(schema) + "." + DeclaredRelation.name(table)
                + "(" + columns.map(DeclaredRelation.name).joined(separator: ", ") + ")"
        }
    }

    /// Both ends, parsed; throws if either is malformed or their column counts differ.
    public func ends() throws -> (from: End, to: End) {
        var a = Scanner(from), b = Scanner(to)
        let ends = (try a.end(), try b.end())
        guard a.atEnd, b.atEnd else { throw PGVaultError.usage("'\(a.atEnd ? to : from)': unexpected text after the column list") }
        guard ends.0.columns.count == ends.1.columns.count else {
            throw PGVaultError.usage("'\(self)': \(ends.0.columns.count) column(s) on the left, \(ends.1.columns.count) on the right")
        }
        return ends
    }

    public static let fileFormat = """
        One relation per line, child -> parent:
          messages.author_id -> users.id
          public.message_reactions.user_id -> public.users.id
          attachments.(message_id, message_created_at) -> messages.(id, created_at)
          "Ops"."Job Runs".owner -> users.id
        A side is table.column or schema.table.column, several columns in
        parentheses; without a schema the table is in public. Names read as
        in SQL: unquoted in lower case, "quoted" exactly. # starts a comment.
        """

    /// Parses a relations file (see ``fileFormat``); errors name the line.
    public static func parse(_ text: String, source: String = "relations file") throws -> [DeclaredRelation] {
        var out: [DeclaredRelation] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var scanner = Scanner(String(line))
            scanner.skipSpaces()
            if scanner.atEnd { continue }
            do {
                let child = try scanner.end()
                scanner.skipSpaces()
                guard scanner.take("->") else { throw PGVaultError.usage("expected '->' after '\(child.text)'") }
                scanner.skipSpaces()
                let parent = try scanner.end()
                scanner.skipSpaces()
                guard scanner.atEnd else { throw PGVaultError.usage("unexpected text after '\(parent.text)'") }
                let relation = DeclaredRelation(from: child.text, to: parent.text)
                _ = try relation.ends()
                out.append(relation)
            } catch let error as PGVaultError where error.kind == .usage {
                throw PGVaultError.usage("\(source), line \(number + 1): \(error.message)")
            }
        }
        return out
    }

    /// Reads and parses a relations file.
    public static func load(path: String) throws -> [DeclaredRelation] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PGVaultError.io("cannot read the relations file '\(path)': \(Files.reason(error)); check the path")
        }
        return try parse(text, source: path)
    }

    /// A name as written in ``End/text``: bare when SQL would read it back the
    /// same, else double-quoted.
    static func name(_ n: String) -> String {
        let bare = !n.isEmpty && n.unicodeScalars.enumerated().allSatisfy { i, c in
            (c >= "a" && c <= "z") || c == "_" || (i > 0 && ((c >= "0" && c <= "9") || c == "$"))
        }
        return bare ? n : "\"" + n.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Reads `name(.name)*` with an optional `(col, ...)` list (`table(cols)` or
    /// `table.(cols)`), skipping `#` comments at the end.
    struct Scanner {
        private let chars: [Character]
        private var i = 0

        init(_ text: String) { chars = Array(text) }

        var atEnd: Bool { i >= chars.count || chars[i] == "#" }

        mutating func skipSpaces() {
            while i < chars.count, chars[i] == " " || chars[i] == "\t" || chars[i] == "\r" { i += 1 }
        }

        mutating func take(_ token: String) -> Bool {
            let t = Array(token)
            guard i + t.count <= chars.count, Array(chars[i..<(i + t.count)]) == t else { return false }
            i += t.count
            return true
        }

        mutating func end() throws -> End {
            var names: [String] = []
            var list: [String]?
            while true {
                skipSpaces()
                if i < chars.count, chars[i] == "(" {
                    list = try columnList()
                    break
                }
                names.append(try identifier())
                skipSpaces()
                if take(".") { continue }
                if i < chars.count, chars[i] == "(" { continue }
                break
            }
            if let list {
                switch names.count {
                case 1: return End(schema: "public", table: names[0], columns: list)
                case 2: return End(schema: names[0], table: names[1], columns: list)
                default: throw PGVaultError.usage("'\(names.joined(separator: "."))': expected table(columns) or schema.table(columns)")
                }
            }
            switch names.count {
            case 2: return End(schema: "public", table: names[0], columns: [names[1]])
            case 3: return End(schema: names[0], table: names[1], columns: [names[2]])
            default: throw PGVaultError.usage("'\(names.joined(separator: "."))': expected table.column or schema.table.column")
            }
        }

        private mutating func columnList() throws -> [String] {
            i += 1  // (
            var columns: [String] = []
            while true {
                skipSpaces()
                columns.append(try identifier())
                skipSpaces()
                if take(",") { continue }
                guard take(")") else { throw PGVaultError.usage("expected ',' or ')' in a column list") }
                return columns
            }
        }

        private mutating func identifier() throws -> String {
            if i < chars.count, chars[i] == "\"" {
                i += 1
                var name = ""
                while i < chars.count {
                    if chars[i] == "\"" {
                        if i + 1 < chars.count, chars[i + 1] == "\"" {
                            name.append("\"")
                            i += 2
                            continue
                        }
                        i += 1
                        guard !name.isEmpty else { throw PGVaultError.usage("empty quoted name") }
                        return name
                    }
                    name.append(chars[i])
                    i += 1
                }
                throw PGVaultError.usage("unterminated quoted name")
            }
            var name = ""
            while i < chars.count, !" \t\r.,()#\"".contains(chars[i]), !(chars[i] == "-" && i + 1 < chars.count && chars[i + 1] == ">") {
                name.append(chars[i])
                i += 1
            }
            guard !name.isEmpty else {
                throw PGVaultError.usage(i < chars.count ? "expected a name at '\(String(chars[i...]))'" : "expected a name at the end of the line")
            }
            return name.lowercased()
        }
    }
}
