import Foundation

/// The cold part of a repository (docs/cold-storage.md):
///
///     <repo>/cold/<schema>.<parent>/<partition>/            one archive per partition
///     <repo>/cold/<schema>.<parent>/.<partition>.partial-<pid>/   being written
///     <repo>/cold/<schema>.<parent>/restored/<partition>.<UTC time>/  brought back
///
/// Each archive is a normal pgvault data-only archive (manifest.json, data/):
/// one unit for the partition's rows and one unit per referencing table holding
/// the rows of that table that referenced the partition.
public struct ColdStore: Sendable {
    public static let folderName = "cold"
    public static let restoredFolder = "restored"

    public let repo: String
    public var root: String { repo + "/" + Self.folderName }
    /// The repository's store: cold archives are listed and read through it
    /// (objects under `cold/`); they are still written in a staging folder and
    /// renamed (docs/storage.md, "What still renames").
    public let store: any ObjectStore

    public init(repo: String) {
        self.repo = repo
        store = LocalFolderStore(root: repo)
    }

    public func tableFolder(schema: String, table: String) -> String {
        root + "/" + Self.safe("\(schema).\(table)")
    }

    public func archivePath(schema: String, table: String, partition: String) -> String {
        tableFolder(schema: schema, table: table) + "/" + Self.safe(partition)
    }

    /// Creates `<repo>/cold/<schema>.<table>` (owner-only) if needed.
    public func ensureTableFolder(schema: String, table: String) throws -> String {
        for path in [repo, root] where !Files.exists(path) {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let folder = tableFolder(schema: schema, table: table)
        if !Files.exists(folder) { try Files.makeDirectory(folder) }
        return folder
    }

    /// A file-name-safe form of a (schema-qualified) name: `/` and NUL cannot be in
    /// a file name, and a leading dot would hide it.
    static func safe(_ name: String) -> String {
        var s = String(name.map { $0 == "/" || $0 == "\0" ? "_" : $0 })
        if s.hasPrefix(".") { s = "_" + s.dropFirst() }
        return s
    }

    /// One range of one table in cold storage.
    public struct Entry: Codable, Sendable {
        /// The partitioned table, `schema.name`.
        public var table: String
        /// The archived partition, `schema.name`.
        public var partition: String
        /// Range bounds as the server printed them (UTC), e.g. `2024-01-01 00:00:00+00`.
        public var from: String
        public var to: String
        /// `cold` (archived, partition removed from the database), `restored`
        /// (brought back; kept for reference) or `incomplete` (a run in progress or
        /// one that died: never used).
        public var status: String
        public var rows: Int64
        /// Rows of referencing tables archived with the partition, by table.
        public var referencingRows: [String: Int64]
        public var bytes: Int64
        public var archivedAt: String?
        public var path: String
    }

    /// Every archive under `<repo>/cold`, by table then range.
    public func entries(includeRestored: Bool = false) throws -> [Entry] {
        var out: [Entry] = []
        for table in try folders(under: Self.folderName + "/") where !table.name.hasPrefix(".") {
            var archives: [(String, String)] = []
            for sub in try folders(under: table.prefix) {
                if sub.name == Self.restoredFolder {
                    if includeRestored {
                        for r in try folders(under: sub.prefix) where !r.name.hasPrefix(".") { archives.append((r.prefix, "restored")) }
                    }
                } else if sub.name.hasPrefix(".") {
                    if sub.name.contains(".partial-") { archives.append((sub.prefix, "incomplete")) }
                } else {
                    archives.append((sub.prefix, "cold"))
                }
            }
            for (prefix, status) in archives {
                out.append(try entry(prefix: prefix, status: status, folder: table.name))
            }
        }
        return out.sorted { ($0.table, $0.from, $0.status) < ($1.table, $1.from, $1.status) }
    }

    /// The "folders" directly under `prefix`: each one's name and prefix.
    private func folders(under prefix: String) throws -> [(name: String, prefix: String)] {
        try store.list(prefix: prefix, delimited: true).prefixes.map { (String($0.dropFirst(prefix.count).dropLast()), $0) }
    }

    func entry(prefix: String, status: String, folder: String) throws -> Entry {
        let bytes = try store.size(of: prefix)
        let path = store.location + "/" + String(prefix.dropLast())
        guard status != "incomplete", let m = try? Archive.manifest(of: DirectoryArchive(store: store, prefix: prefix)),
              let info = ColdArchiveInfo(manifest: m) else {
            return Entry(table: folder, partition: (path as NSString).lastPathComponent, from: "-", to: "-",
                         status: "incomplete", rows: 0, referencingRows: [:], bytes: bytes, archivedAt: nil, path: path)
        }
        return Entry(
            table: info.parent, partition: info.partition.qualifiedName, from: info.from, to: info.to, status: status,
            rows: info.partitionUnit.rows, referencingRows: Dictionary(info.referencingUnits.map { ($0.qualifiedTable, $0.rows) }, uniquingKeysWith: +),
            bytes: bytes, archivedAt: m.completedAt, path: path)
    }

    /// The cold archive at `path` (an entry's), read through the store.
    func open(_ path: String) throws -> ArchiveSource {
        let base = store.location + "/"
        guard path.hasPrefix(base) else { return try Archive.open(path) }
        return DirectoryArchive(store: store, prefix: String(path.dropFirst(base.count)) + "/")
    }
}

/// What a cold archive's manifest says about its partition: the partition's
/// table entry (kind `partition`, with parent and bound) and its unit, and the
/// units of referencing rows (every other unit).
public struct ColdArchiveInfo: Sendable {
    public var partition: Manifest.Table
    public var partitionUnit: Manifest.Unit
    public var referencingUnits: [Manifest.Unit]
    public var bound: Manifest.Bound

    public var parent: String { "\(partition.parentSchema ?? "").\(partition.parentName ?? "")" }
    public var from: String { bound.rangeFrom?.joined(separator: ", ") ?? "-" }
    public var to: String { bound.rangeTo?.joined(separator: ", ") ?? "-" }

    public init?(manifest m: Manifest) {
        guard m.tables.filter({ $0.kind == "partition" }).count == 1,
              let p = m.tables.first(where: { $0.kind == "partition" }), let bound = p.bound,
              p.parentName != nil, bound.rangeFrom != nil, bound.rangeTo != nil else { return nil }
        let own = m.units.filter { $0.schema == p.schema && $0.table == p.name }
        guard own.count == 1 else { return nil }
        partition = p
        partitionUnit = own[0]
        referencingUnits = m.units.filter { !($0.schema == p.schema && $0.table == p.name) }
        self.bound = bound
    }
}
