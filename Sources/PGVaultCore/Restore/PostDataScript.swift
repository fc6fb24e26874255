import Foundation

/// A full restore's post-data script, read once as it streams out of the
/// archive. Each object's SQL goes to an unlinked temporary file (a
/// ``SpoolFile``) and is read back when its step runs; what stays in memory
/// is what the restore's graph needs to order the objects (``Entry``).
///
/// Why: at 10,000 daily partitions the script has some 140,000 objects and
/// tens of MB of SQL. Held as text, parsed whole and then kept by the steps,
/// it was most of the restore's memory (about 1 KB per object at its peak).
struct PostDataScript: Sendable {
    /// What the graph needs of one object, read from its SQL as it streamed
    /// by. Names are numbers into ``names``: at 10,000 partitions there are
    /// 140,000 entries, and with strings of their own (a partition's index
    /// is named in its build and in its attachment) they were about 350
    /// bytes each; numbered, they are 56.
    struct Entry: Sendable {
        /// The object's position in the script: the journal's `post-data:N`.
        var index: Int
        var phase: SchemaScript.Phase
        /// A key, or a CREATE UNIQUE INDEX: what a foreign key that references the table needs.
        var unique = false
        /// A key or index on the table alone, not its partitions (`ALTER
        /// TABLE ONLY`, `CREATE INDEX ... ON ONLY`): on a partitioned table
        /// it reads no rows.
        var only = false
        /// The table it is built on or alters (`schema.name`, unquoted), if its SQL names one.
        var relation: Int32 = -1
        /// A key's or index's index (`schema.name`, as pg_dump names it).
        var builds: Int32 = -1
        /// `ALTER INDEX parent ATTACH PARTITION child`: the two indexes.
        var attachParent: Int32 = -1
        var attachChild: Int32 = -1
        /// A foreign key's referenced table.
        var referenced: Int32 = -1
        var spooled: SpooledObject

        init(index: Int, phase: SchemaScript.Phase, spooled: SpooledObject) {
            self.index = index
            self.phase = phase
            self.spooled = spooled
        }
    }

    /// pg_dump's session settings, run on every connection that builds objects.
    var preamble: [String] = []
    var entries: [Entry] = []
    /// The names the entries give, by number: tables and indexes
    /// (`schema.name`, unquoted; PostgreSQL gives both one namespace per
    /// schema, so a number is one relation).
    var names: [String] = []
    /// The foreign keys the script itself adds NOT VALID, as `schema name`
    /// (as ``RestoreProof/standard(_:plan:notValidInArchive:)`` names them).
    var notValid = Set<String>()
    private var numbers: [String: Int32] = [:]

    /// The name numbered `n`, or nil for -1.
    func name(_ n: Int32) -> String? { n >= 0 ? names[Int(n)] : nil }

    /// The number of `name`, given one if it has none.
    mutating func number(_ name: String) -> Int32 {
        if let known = numbers[name] { return known }
        let n = Int32(names.count)
        names.append(name)
        numbers[name] = n
        return n
    }

    /// The script of `member`, with --no-owner/--no-privileges applied.
    static func read(_ member: Manifest.Member, options: RestoreOptions) throws -> PostDataScript {
        let writer = try SpooledObject.Writer()
        var script = PostDataScript()
        try SchemaScript.stream(member, from: try options.source.open()) { object, given in
            script.preamble = given
            guard let object = SchemaScript.filter(object, noOwner: options.noOwner, noPrivileges: options.noPrivileges) else { return }
            script.add(object, spooled: try writer.append(object))
        }
        script.seal(try writer.finish())
        return script
    }

    /// The spool every entry's object is in, once it is written whole.
    mutating func seal(_ spool: SealedSpool) {
        entries = entries.trimmed()
        for k in entries.indices { entries[k].spooled.spool = spool }
    }

    /// What orders the objects goes (once the graph is built from it); the
    /// preamble stays.
    mutating func dropFacts() {
        entries = []
        names = []
        numbers = [:]
    }

    /// Reads the facts of `object` the graph orders it by, and appends them.
    mutating func add(_ object: SchemaScript.Object, spooled: SpooledObject) {
        let phase = SchemaScript.Phase.of(object)
        var entry = Entry(index: object.index, phase: phase, spooled: spooled)
        if let table = SchemaScript.tableOf(object).flatMap({ QualifiedName.parse($0)?.text }) { entry.relation = number(table) }
        switch phase {
        case .keys, .indexes:
            if let name = QualifiedName.indexName(object) { entry.builds = number("\(object.schema ?? "").\(name)") }
            entry.unique = phase == .keys || object.sql.hasPrefix("CREATE UNIQUE INDEX ")
            entry.only = object.sql.hasPrefix("ALTER TABLE ONLY ") || (object.sql.hasPrefix("CREATE ") && object.sql.contains(" ON ONLY "))
        case .attach:
            if let (parent, child) = QualifiedName.attachment(object.sql) {
                entry.attachParent = number(parent.text)
                entry.attachChild = number(child.text)
            }
        case .foreignKeys:
            if let referenced = QualifiedName.referenced(object.sql) { entry.referenced = number(referenced.text) }
            if RestoreProof.addsNotValid(object) { notValid.insert("\(object.schema ?? "") \(object.name)") }
        case .rest:
            break
        }
        entries.append(entry)
    }
}

/// One schema object's place in a spool file: read back whole by ``read()``.
///
/// The spool holds, for each object, its fields separated by NUL bytes
/// (which neither SQL nor a name can hold): index, type, schema, name,
/// tablespace, access method, SQL. An absent schema or access method is
/// empty (an identifier never is).
struct SpooledObject: Sendable {
    /// Nil only while the script is being written.
    fileprivate(set) var spool: SealedSpool?
    var offset: Int64
    var length: Int

    func read() throws -> SchemaScript.Object {
        guard let spool else { throw PGVaultError.io("a post-data object was read before its script was written whole (a bug in pgvault)") }
        let bytes = try spool.read(offset: offset, count: length)
        let fields = bytes.split(separator: 0, maxSplits: 6, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count == 7, let index = Int(fields[0]) else {
            throw PGVaultError.io("a post-data object at \(offset) of the restore's temporary file does not read back; was the file changed?")
        }
        return SchemaScript.Object(
            index: index, name: fields[3], type: fields[1], schema: fields[2].isEmpty ? nil : fields[2], sql: fields[6],
            tablespace: fields[4], accessMethod: fields[5].isEmpty ? nil : fields[5])
    }

    /// Writes objects to a new spool file, then seals it.
    final class Writer {
        private let file: SpoolFile

        init() throws { file = try SpoolFile(purpose: "restore-post-data") }

        /// The object's place; its spool is set by ``finish()``'s caller.
        func append(_ object: SchemaScript.Object) throws -> SpooledObject {
            let fields = [String(object.index), object.type, object.schema ?? "", object.name, object.tablespace, object.accessMethod ?? "", object.sql]
            guard !fields.contains(where: { $0.utf8.contains(0) }) else {
                throw PGVaultError.archive("the post-data script's \(object.type) \(object.name) holds a NUL byte, which no SQL can; the archive is damaged")
            }
            let record = Array(fields.joined(separator: "\0").utf8)
            let offset = file.size
            try record.withUnsafeBytes { try file.append($0) }
            return SpooledObject(spool: nil, offset: offset, length: record.count)
        }

        func finish() throws -> SealedSpool { try file.sealed() }
    }

    /// `objects` spooled and sealed: for a graph made without an archive (tests).
    static func spool(_ objects: [SchemaScript.Object]) throws -> [SpooledObject] {
        let writer = try Writer()
        var spooled = try objects.map { try writer.append($0) }
        let spool = try writer.finish()
        for k in spooled.indices { spooled[k].spool = spool }
        return spooled
    }
}
