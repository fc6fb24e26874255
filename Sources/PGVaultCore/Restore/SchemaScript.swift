import PGClient

/// pg_dump's plain-SQL output of `--schema-only --section=pre-data|post-data`,
/// split into the pieces a restore needs: the session preamble (`SET ...`,
/// `SELECT pg_catalog.set_config('search_path', '', false)`) and one ``Object``
/// per `-- Name: ...; Type: ...; Schema: ...` header that pg_dump writes before
/// each object.
///
/// Restore runs this SQL through libpq, not psql, so psql meta-commands are
/// handled here: the `\restrict KEY` / `\unrestrict KEY` lines that recent
/// pg_dump versions (17.6+, 16.10+, 15.14+) write are dropped; any other
/// top-level meta-command (`\connect`, from `--create`) is refused.
/// `SET default_tablespace` / `SET default_table_access_method` lines are
/// state that pg_dump sets *before* an object's header; they are taken out of
/// the bodies and attached to the objects they apply to, so objects can run
/// on any connection in any order.
public struct SchemaScript: Sendable, Equatable {
    public struct Object: Sendable, Equatable {
        /// Position in the script (0-based), stable across runs: the journal's key.
        public var index: Int
        /// The header's `Name:` (e.g. `users users_pkey`, `create_monthly_partition(text, date)`).
        public var name: String
        /// The header's `Type:` (e.g. `TABLE`, `INDEX`, `FK CONSTRAINT`).
        public var type: String
        /// The header's `Schema:`; nil for `-` (extensions, ...).
        public var schema: String?
        /// The SQL of the object, header and trailing comments removed.
        public var sql: String
        /// `SET default_tablespace` value in force for this object (`''` = the default).
        public var tablespace: String
        /// `SET default_table_access_method` value in force, if pg_dump set one.
        public var accessMethod: String?
    }

    /// Session settings at the top (one statement per element).
    public var preamble: [String]
    public var objects: [Object]

    public init(preamble: [String], objects: [Object]) {
        self.preamble = preamble
        self.objects = objects
    }

    /// Parses pg_dump output. Throws on a psql meta-command it cannot run.
    public static func parse(_ text: String) throws -> SchemaScript {
        var parser = Parser()
        var objects: [Object] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            try parser.feed(line) { object, _ in objects.append(object) }
        }
        try parser.finish { object, _ in objects.append(object) }
        return SchemaScript(preamble: parser.preamble, objects: objects)
    }

    /// `-- Name: users; Type: TABLE; Schema: public; Owner: postgres`, or
    /// pg_dump 18's `-- Statistics for Name: users; Type: STATISTICS DATA; ...`.
    static func parseHeader(_ line: Substring) -> (name: String, type: String, schema: String?)? {
        guard let prefix = ["-- Name: ", "-- Statistics for Name: "].first(where: { line.hasPrefix($0) }) else { return nil }
        let rest = line.dropFirst(prefix.count)
        guard let typeRange = rest.range(of: "; Type: ") else { return nil }
        let name = String(rest[..<typeRange.lowerBound])
        let afterType = rest[typeRange.upperBound...]
        guard let schemaRange = afterType.range(of: "; Schema: ") else { return nil }
        let type = String(afterType[..<schemaRange.lowerBound])
        let afterSchema = afterType[schemaRange.upperBound...]
        let schemaText = afterSchema.range(of: "; ").map { afterSchema[..<$0.lowerBound] } ?? afterSchema
        return (name, type, schemaText == "-" ? nil : String(schemaText))
    }

    static func isRestrictLine(_ line: Substring) -> Bool {
        for command in ["\\restrict ", "\\unrestrict "] where line.hasPrefix(command) {
            let key = line.dropFirst(command.count)
            return !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber }
        }
        return false
    }

    /// `SET name = value;` → value.
    static func settingValue(_ line: Substring, _ name: String) -> String? {
        let prefix = "SET \(name) = "
        guard line.hasPrefix(prefix), line.hasSuffix(";") else { return nil }
        return String(line.dropFirst(prefix.count).dropLast())
    }

    static func isCommentOrBlank(_ line: Substring) -> Bool {
        line.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } || line.hasPrefix("--")
    }

    // MARK: - Options applied to the script

    /// One object without its `ALTER ... OWNER TO ...` lines (for a target
    /// that lacks the source's roles) and/or dropped when it is a GRANT or
    /// REVOKE; nil when nothing of it is left.
    static func filter(_ object: Object, noOwner: Bool, noPrivileges: Bool) -> Object? {
        if noPrivileges && (object.type == "ACL" || object.type == "DEFAULT ACL") { return nil }
        guard noOwner else { return object }
        var copy = object
        copy.sql = object.sql.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !($0.hasPrefix("ALTER ") && $0.contains(" OWNER TO ") && $0.hasSuffix(";")) }
            .joined(separator: "\n")
        return copy.sql.split(separator: "\n").allSatisfy(isCommentOrBlank) ? nil : copy
    }

    /// The SQL of `objects`, each preceded by the tablespace/access-method
    /// settings it needs (as SET LOCAL, so it must run inside a transaction).
    public static func sql(of objects: [Object]) -> String {
        objects.map(sql(of:)).joined(separator: "\n")
    }

    public static func sql(of object: Object) -> String {
        var text = "SET LOCAL default_tablespace = \(object.tablespace);\n"
        if let am = object.accessMethod { text += "SET LOCAL default_table_access_method = \(am);\n" }
        return text + object.sql
    }

    // MARK: - Post-data phases

    /// The kinds of post-data objects, in the order a phase-by-phase restore
    /// would build them. ``RestoreGraph`` turns them into steps with
    /// dependencies; whatever it cannot resolve keeps this order.
    public enum Phase: Int, Sendable, CaseIterable, Comparable {
        /// Primary keys, unique and exclusion constraints (and NOT VALID checks).
        case keys
        /// Other indexes (including `CREATE INDEX ... ON ONLY parent`).
        case indexes
        /// `ALTER INDEX parent ATTACH PARTITION child`: quick catalog changes.
        case attach
        /// Foreign keys: they need the referenced keys, attached on partitioned tables.
        case foreignKeys
        /// Triggers, rules, policies, comments, grants...: in the dump's order.
        case rest

        public static func < (a: Phase, b: Phase) -> Bool { a.rawValue < b.rawValue }

        public static func of(_ object: Object) -> Phase { of(type: object.type) }

        /// The phase of an object of pg_dump's `Type:`.
        public static func of(type: String) -> Phase {
            switch type {
            case "CONSTRAINT", "CHECK CONSTRAINT": return .keys
            case "INDEX": return .indexes
            case "INDEX ATTACH": return .attach
            case "FK CONSTRAINT": return .foreignKeys
            default: return .rest
            }
        }
    }

    /// The table an index or constraint is built on, as pg_dump wrote it
    /// (`public.users`, `"Ops"."Job Runs"`), for ordering by size.
    public static func tableOf(_ object: Object) -> String? {
        let sql = object.sql
        if let on = sql.range(of: " ON ONLY ") ?? sql.range(of: " ON "), object.type == "INDEX" {
            let rest = sql[on.upperBound...]
            return rest.range(of: " USING ").map { String(rest[..<$0.lowerBound]) }
        }
        for prefix in ["ALTER TABLE ONLY ", "ALTER TABLE "] where sql.hasPrefix(prefix) {
            let rest = sql.dropFirst(prefix.count)
            return String(rest.prefix { $0 != "\n" })
        }
        return nil
    }

    /// `schema.name` as pg_dump's fmtId writes it: quoted unless plain lower case.
    public static func dumpName(_ schema: String, _ name: String) -> String {
        func fmt(_ s: String) -> String {
            let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "$" }
                && !(s.first!.isNumber) && s.first != "$"
            return plain ? s : SQL.ident(s)
        }
        return fmt(schema) + "." + fmt(name)
    }

    // MARK: - --clean

    /// DROP statements for what a pre-data script creates (and, of a
    /// post-data script, the event triggers and publications, which belong
    /// to no table that takes them along), with the objects
    /// they name (for the report). `public` is never dropped. Every DROP has
    /// IF EXISTS (the target may hold only part of the schema) and CASCADE.
    ///
    /// Relations go first, last created first: CASCADE cannot drop an object
    /// another one holds as an internal part, so an identity column's
    /// sequence, which dropping its table removes, is never dropped on its
    /// own (pg_dump writes it as a SEQUENCE object made by `ALTER TABLE ...
    /// ADD GENERATED ... AS IDENTITY`), and a target whose sequence of that
    /// name is the identity of a table the archive also holds has it gone
    /// before the archive's sequences are dropped. Then sequences, functions,
    /// types, collations, text search configurations...; extensions and
    /// schemas last.
    public func dropStatements() -> [(sql: String, object: String)] {
        Self.ordered(objects.compactMap(Self.drop))
    }

    /// The DROP of one object, if --clean drops objects of its kind.
    struct Drop {
        var sql: String
        /// What the report names: `table public.users`.
        var object: String
        /// A table, view...: dropped before everything else.
        var relation: Bool
    }

    static func drop(_ object: Object) -> Drop? {
        let what = "\(object.type.lowercased()) \(object.schema.map { "\($0)." } ?? "")\(object.name)"
        switch (object.type, object.schema) {
        case ("TABLE", let schema?), ("VIEW", let schema?), ("MATERIALIZED VIEW", let schema?), ("FOREIGN TABLE", let schema?):
            return Drop(sql: "DROP \(object.type) IF EXISTS \(SQL.qualified(schema, object.name)) CASCADE", object: what, relation: true)
        case ("SEQUENCE", _) where isIdentitySequence(object):
            return nil
        case ("SEQUENCE", let schema?), ("TYPE", let schema?), ("DOMAIN", let schema?), ("COLLATION", let schema?), ("CONVERSION", let schema?),
             ("TEXT SEARCH CONFIGURATION", let schema?), ("TEXT SEARCH DICTIONARY", let schema?):
            return Drop(sql: "DROP \(object.type) IF EXISTS \(SQL.qualified(schema, object.name)) CASCADE", object: what, relation: false)
        case ("FUNCTION", let schema?), ("PROCEDURE", let schema?), ("AGGREGATE", let schema?):
            guard let paren = object.name.firstIndex(of: "(") else { return nil }
            let name = String(object.name[..<paren]), args = object.name[paren...]
            return Drop(sql: "DROP \(object.type) IF EXISTS \(SQL.qualified(schema, name))\(args) CASCADE", object: what, relation: false)
        case ("SCHEMA", _) where object.name != "public":
            return Drop(sql: "DROP SCHEMA IF EXISTS \(SQL.ident(object.name)) CASCADE", object: what, relation: false)
        case ("EXTENSION", _), ("EVENT TRIGGER", _), ("PUBLICATION", _):
            return Drop(sql: "DROP \(object.type) IF EXISTS \(SQL.ident(object.name)) CASCADE", object: what, relation: false)
        default:
            return nil
        }
    }

    /// The drops of a script's objects, given in the script's order, in the
    /// order they run: relations first, each group last created first.
    static func ordered(_ drops: [Drop]) -> [(sql: String, object: String)] {
        let reversed = drops.reversed()
        return (reversed.filter(\.relation) + reversed.filter { !$0.relation }).map { ($0.sql, $0.object) }
    }

    /// pg_dump's SEQUENCE object of an identity column: no CREATE SEQUENCE,
    /// the sequence is made by `ALTER TABLE ... ADD GENERATED ... AS IDENTITY`.
    static func isIdentitySequence(_ object: Object) -> Bool {
        object.type == "SEQUENCE" && !object.sql.contains("CREATE SEQUENCE ") && object.sql.contains(" AS IDENTITY")
    }
}
