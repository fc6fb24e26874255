extension SchemaScript {
    /// Streams an archive's member of pg_dump SQL through a ``Parser``: each
    /// object is handed over as soon as the next header closes it, so no
    /// more than one object's text is held. The member's size and SHA-256
    /// are checked as it streams, the checksum at its end: what was handed
    /// over is suspect until this returns.
    static func stream(_ member: Manifest.Member, from source: ArchiveSource, emit: Parser.Emit) throws {
        var parser = Parser()
        var lines = LineSplitter()
        func line(_ bytes: UnsafeRawBufferPointer) throws {
            guard let text = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
                throw PGVaultError.archive("member \(member.member) is not valid UTF-8 text")
            }
            try parser.feed(text[...], emit: emit)
        }
        try Archive.streamMember(member.member, expectedBytes: member.bytes, sha256: member.sha256, from: source,
                                 maxOutput: 1 << 30) { try lines.feed($0, line: line) }
        try lines.finish(line: line)
        try parser.finish(emit: emit)
    }

    /// Reads pg_dump's script one line at a time and hands each object over
    /// as soon as the next header (or the end) closes it, so a script of any
    /// size is applied in bounded memory (``RestoreStatistics``). ``parse(_:)``
    /// is this parser fed every line of a whole text.
    ///
    /// The ``preamble`` is complete before the first object is handed over:
    /// pg_dump writes its session settings before the first header.
    struct Parser {
        /// Takes an object and the preamble (complete by then).
        typealias Emit = (Object, _ preamble: [String]) throws -> Void

        private(set) var preamble: [String] = []
        /// Objects handed over so far: the next one's ``Object/index``.
        private var count = 0
        // State set by `SET` lines; pg_dump writes them before the header of the
        // object they apply to, so an object takes the state in force at its header.
        private var tablespace = "''"
        private var accessMethod: String?
        private var current: Object?
        private var body: [String] = []
        private var lexer = SQLLineState()
        /// Lines held back while they may still turn out to be a header:
        /// `--`, `-- Name: ...`, `--`.
        private var held: [String] = []

        /// Reads the next line (without its newline).
        mutating func feed(_ line: Substring, emit: Emit) throws {
            held.append(String(line))
            try drain(atEnd: false, emit: emit)
        }

        /// Ends the script: hands over the last object.
        mutating func finish(emit: Emit) throws {
            try drain(atEnd: true, emit: emit)
            try close(emit)
        }

        private mutating func drain(atEnd: Bool, emit: Emit) throws {
            while let line = held.first {
                if lexer.atTopLevel, line == "--" {
                    if held.count < 3 && !atEnd { return }
                    if held.count >= 3, held[2] == "--", let header = SchemaScript.parseHeader(held[1][...]) {
                        try close(emit)
                        current = Object(
                            index: 0, name: header.name, type: header.type, schema: header.schema, sql: "",
                            tablespace: tablespace, accessMethod: accessMethod)
                        held.removeFirst(3)
                        continue
                    }
                }
                held.removeFirst()
                try take(line[...])
            }
        }

        /// One line that is not part of a header.
        private mutating func take(_ line: Substring) throws {
            // Inside a literal, a dollar-quoted body or a comment, a line is text.
            guard lexer.atTopLevel else {
                lexer.consume(line)
                if current != nil {
                    body.append(String(line))
                } else if !preamble.isEmpty {
                    preamble[preamble.count - 1] += "\n" + line
                }
                return
            }
            if line.hasPrefix("\\") {
                if SchemaScript.isRestrictLine(line) { return }
                throw PGVaultError.archive("the schema script holds the psql meta-command '\(line.prefix(40))', which pgvault cannot run; take the backup without pg_dump --create")
            }
            lexer.consume(line)
            if let value = SchemaScript.settingValue(line, "default_tablespace") {
                tablespace = value
            } else if let value = SchemaScript.settingValue(line, "default_table_access_method") {
                accessMethod = value
            } else if current != nil {
                body.append(String(line))
            } else if !SchemaScript.isCommentOrBlank(line) {
                preamble.append(String(line))
            }
        }

        private mutating func close(_ emit: Emit) rethrows {
            guard var object = current else { return }
            while let last = body.last, SchemaScript.isCommentOrBlank(last[...]) { body.removeLast() }
            while let first = body.first, SchemaScript.isCommentOrBlank(first[...]) { body.removeFirst() }
            current = nil
            defer { body = [] }
            guard !body.isEmpty else { return }
            object.index = count
            object.sql = body.joined(separator: "\n")
            count += 1
            try emit(object, preamble)
        }
    }
}
