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
    /// What the graph needs of one object, read from its SQL as it streamed by.
    struct Entry: Sendable {
        /// The object's position in the script: the journal's `post-data:N`.
        var index: Int
        var type: String
        var schema: String?
        var name: String
        /// The table it is built on or alters (`schema.name`, unquoted), if its SQL names one.
        var relation: String?
        /// A key's or index's index (`schema.name`, as pg_dump names it).
        var builds: String?
        /// A key, or a CREATE UNIQUE INDEX: what a foreign key that references the table needs.
        var unique: Bool
        /// `ALTER INDEX parent ATTACH PARTITION child`: the two indexes.
        var attachment: (parent: String, child: String)?
        /// A foreign key's referenced table.
        var referenced: String?
        /// A foreign key the archive itself holds NOT VALID.
        var notValid: Bool
        var spooled: SpooledObject
    }

    /// pg_dump's session settings, run on every connection that builds objects.
    var preamble: [String]
    var entries: [Entry]

    /// The script of `member`, with --no-owner/--no-privileges applied.
    static func read(_ member: Manifest.Member, options: RestoreOptions) throws -> PostDataScript {
        let writer = try SpooledObject.Writer()
        var entries: [Entry] = []
        var preamble: [String] = []
        // One storage for each name: a partition's name is in each of its
        // keys, indexes and attachments, a parent index's in the attachment
        // of every partition's index (at 10,000 partitions, 140,000 objects).
        var names = Set<String>()
        func shared(_ name: String) -> String { names.insert(name).memberAfterInsert }
        try SchemaScript.stream(member, from: try options.source.open()) { object, given in
            preamble = given
            guard let object = SchemaScript.filter(object, noOwner: options.noOwner, noPrivileges: options.noPrivileges) else { return }
            var entry = entry(object, spooled: try writer.append(object))
            entry.name = shared(entry.name)
            entry.relation = entry.relation.map(shared)
            entry.builds = entry.builds.map(shared)
            entry.attachment = entry.attachment.map { (shared($0.parent), shared($0.child)) }
            entry.referenced = entry.referenced.map(shared)
            entries.append(entry)
        }
        let spool = try writer.finish()
        for k in entries.indices { entries[k].spooled.spool = spool }
        return PostDataScript(preamble: preamble, entries: entries)
    }

    /// The facts of `object` the graph orders it by.
    static func entry(_ object: SchemaScript.Object, spooled: SpooledObject) -> Entry {
        let phase = SchemaScript.Phase.of(object)
        var builds: String?
        if phase == .keys || phase == .indexes, let name = QualifiedName.indexName(object) {
            builds = "\(object.schema ?? "").\(name)"
        }
        let attachment = phase == .attach ? QualifiedName.attachment(object.sql).map { ($0.0.text, $0.1.text) } : nil
        return Entry(
            index: object.index, type: object.type, schema: object.schema, name: object.name,
            relation: SchemaScript.tableOf(object).flatMap { QualifiedName.parse($0)?.text }, builds: builds,
            unique: phase == .keys || object.sql.hasPrefix("CREATE UNIQUE INDEX "), attachment: attachment,
            referenced: phase == .foreignKeys ? QualifiedName.referenced(object.sql)?.text : nil,
            notValid: RestoreProof.addsNotValid(object), spooled: spooled)
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
