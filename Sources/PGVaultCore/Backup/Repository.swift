import Foundation

/// A folder of backups of one database (docs/archive-format.md, "Repository
/// layout"). A backup is an archive directory or a `.tar` file named
/// `<database>-<UTC time>` (see RepositoryNames.swift); a backup still running
/// (or one that died) is a hidden `.<name>.partial-<pid>` folder, which is never
/// listed as complete and never used by a restore. `cold/` holds cold storage.
/// Anything else (a nested repository, a folder of someone else's) is reported
/// as what it is and never touched.
public struct Repository: Sendable {
    public let path: String
    /// The backups, through the interface an object store implements too: a
    /// local folder now (docs/storage.md).
    public let store: any ObjectStore

    /// The repository a backup writes into, created (owner-only) if missing.
    public init(path: String) throws {
        self.path = path
        store = LocalFolderStore(root: path)
        if !Files.exists(path) {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw PGVaultError.io("cannot create repository '\(path)': \(Files.reason(error)); create the folder or choose another --repo")
            }
        }
        try Self.checkFolder(path)
        guard access(path, W_OK) == 0 else {
            let code = errno
            throw PGVaultError.io("cannot write in repository '\(path)': \(String(cString: strerror(code))); check its permissions or choose another --repo", underlying: SystemCallError(code: code))
        }
    }

    init(checked path: String) {
        self.path = path
        store = LocalFolderStore(root: path)
    }

    /// An existing repository (list, prune): a path that does not exist is an
    /// error, not an empty repository.
    public static func existing(_ path: String) throws -> Repository {
        guard Files.exists(path) else {
            throw PGVaultError.archive("repository '\(path)' does not exist; check the path (a backup with --repo creates it)")
        }
        try checkFolder(path)
        return Repository(checked: path)
    }

    static func checkFolder(_ path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw PGVaultError.archive("repository '\(path)' is not a folder (a file?); give the folder that holds the backups")
        }
        guard access(path, R_OK | X_OK) == 0 else {
            let code = errno
            throw PGVaultError.io("cannot read repository '\(path)': \(String(cString: strerror(code))); check its permissions", underlying: SystemCallError(code: code))
        }
    }

    public struct Entry: Codable, Sendable {
        public var name: String
        public var path: String
        public var status: String  // complete | incomplete | damaged
        public var database: String?
        public var startedAt: String?
        public var completedAt: String?
        public var seconds: Double?
        public var rows: Int64?
        public var bytes: Int64
        public var units: Int?
        /// A format-2 repository's backup: its raw size (COPY streams and
        /// schema), and the bytes of the packs it added (`bytes` is what its
        /// chunks take, shared with other backups).
        public var logicalBytes: Int64?
        public var addedBytes: Int64?
        /// A format-2 repository's backup: its newest restore drill.
        public var lastDrill: DrillRecord?
    }

    /// Something in the repository that is not a backup: shown for what it is,
    /// never pruned.
    public struct Other: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// `cold/`: cold storage of this repository (`list --cold`).
            case coldStorage
            /// A folder holding backups or cold storage itself: another repository.
            case nestedRepository
            /// Not pgvault's.
            case unknown
        }
        public var name: String
        public var kind: Kind
    }

    /// Every backup, newest first.
    public func entries() throws -> [Entry] { try scan().backups }

    /// Backups (newest first) and everything else, by name. What is a backup
    /// is decided by the object that commits it (a prefix holding
    /// `manifest.json`, or a `.tar` object, whose manifest is read), never by
    /// a listing alone: a store's listing may lag (docs/storage.md).
    public func scan() throws -> (backups: [Entry], others: [Other]) {
        let top: ObjectListing
        do {
            top = try store.list(prefix: "", delimited: true)
        } catch let error as PGVaultError {
            let reason = (error.underlying as? SystemCallError)?.description ?? error.message
            throw PGVaultError.io("cannot read repository '\(path)': \(reason); check the path and its permissions", underlying: error.underlying ?? error)
        }
        var out: [Entry] = []
        var others: [Other] = []
        for object in top.objects {
            let name = object.key
            let full = store.location + "/" + name
            if name.hasPrefix(".") {
                if RepositoryNames.partialPID(name) != nil {
                    out.append(Entry(name: name, path: full, status: "incomplete", bytes: object.size))
                }
                continue
            }
            guard name.hasSuffix(".tar"), let source = try? Archive.open(name, in: store), let m = try? Archive.manifest(of: source) else {
                others.append(Other(name: name, kind: .unknown))
                continue
            }
            out.append(Self.complete(m, name: name, path: full, bytes: object.size))
        }
        for prefix in top.prefixes {
            let name = String(prefix.dropLast())
            let full = store.location + "/" + name
            if name.hasPrefix(".") {
                if RepositoryNames.partialPID(name) != nil {
                    out.append(Entry(name: name, path: full, status: "incomplete", bytes: try store.size(of: prefix)))
                }
                continue
            }
            if name == ColdStore.folderName {
                others.append(Other(name: name, kind: .coldStorage))
                continue
            }
            // A backup is what holds a pgvault manifest, whatever its name (old
            // `<db>-YYYYMMDDTHHMMSSZ` names and new ones alike).
            let objects = try store.list(prefix: prefix)
            let bytes = objects.reduce(0) { $0 + $1.size }
            guard objects.contains(where: { $0.key == prefix + Manifest.memberName }) else {
                if try holdsBackups(prefix) {
                    others.append(Other(name: name, kind: .nestedRepository))
                } else if Self.holdsOnlyMembers(objects, of: prefix) {
                    // Members without their manifest: a prune that was
                    // interrupted after deleting the manifest (or a write that
                    // never committed).
                    out.append(Entry(name: name, path: full, status: "incomplete", bytes: bytes))
                } else {
                    others.append(Other(name: name, kind: .unknown))
                }
                continue
            }
            guard let m = try? Archive.manifest(of: Archive.open(name, in: store)) else {
                out.append(Entry(name: name, path: full, status: "damaged", bytes: bytes))
                continue
            }
            out.append(Self.complete(m, name: name, path: full, bytes: bytes))
        }
        return (out.sorted { ($0.startedAt ?? $0.name) > ($1.startedAt ?? $1.name) }, others.sorted { $0.name < $1.name })
    }

    static func complete(_ m: Manifest, name: String, path: String, bytes: Int64) -> Entry {
        let seconds = ISO8601.parse(m.completedAt).flatMap { end in ISO8601.parse(m.startedAt).map { end.timeIntervalSince($0) } }
        return Entry(
            name: name, path: path, status: "complete", database: m.database.name, startedAt: m.startedAt,
            completedAt: m.completedAt, seconds: seconds, rows: m.units.reduce(0) { $0 + $1.rows }, bytes: bytes,
            units: m.units.count)
    }

    /// A prefix that itself holds backups, partial backups or cold storage.
    func holdsBackups(_ prefix: String) throws -> Bool {
        let inside = try store.list(prefix: prefix, delimited: true)
        let names = inside.objects.map { String($0.key.dropFirst(prefix.count)) } + inside.prefixes.map { String($0.dropFirst(prefix.count).dropLast()) }
        for name in names where name == ColdStore.folderName || RepositoryNames.partialPID(name) != nil || name.hasSuffix(".tar") {
            return true
        }
        for sub in inside.prefixes where try store.head(sub + Manifest.memberName) != nil {
            return true
        }
        return false
    }

    /// Every object is an archive member (`data/`, `schema/`): what a backup
    /// leaves without its manifest.
    static func holdsOnlyMembers(_ objects: [ObjectInfo], of prefix: String) -> Bool {
        !objects.isEmpty && objects.allSatisfy { object in
            let member = object.key.dropFirst(prefix.count)
            return member.hasPrefix("data/") || member.hasPrefix("schema/")
        }
    }

    public struct Policy: Sendable {
        public var daily: Int
        public var weekly: Int
        public var monthly: Int
        public init(daily: Int, weekly: Int, monthly: Int) {
            self.daily = daily
            self.weekly = weekly
            self.monthly = monthly
        }
    }

    public struct PruneDecision: Codable, Sendable {
        public var name: String
        public var keep: Bool
        public var reasons: [String]
    }

    /// Grandfather-father-son retention over complete backups: keep the newest
    /// backup of each of the last `daily` days that have one, of the last
    /// `weekly` ISO weeks, and of the last `monthly` months (UTC). The newest
    /// complete backup is always kept. Incomplete backups are not touched here.
    public static func plan(_ entries: [Entry], policy: Policy) -> [PruneDecision] {
        let complete = entries.filter { $0.status == "complete" }
            .compactMap { e in (e.startedAt.flatMap(ISO8601.parse)).map { (e, $0) } }
            .sorted { $0.1 > $1.1 }
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var reasons: [String: [String]] = [:]
        func keepNewestPer(_ label: String, _ count: Int, _ key: (Date) -> String) {
            var seen: [String] = []
            for (entry, date) in complete {
                let k = key(date)
                if seen.contains(k) { continue }
                guard seen.count < count else { break }
                seen.append(k)
                reasons[entry.name, default: []].append("\(label) \(k)")
            }
        }
        keepNewestPer("daily", policy.daily) { d in
            let c = calendar.dateComponents([.year, .month, .day], from: d)
            return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
        }
        keepNewestPer("weekly", policy.weekly) { d in
            let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d)
            return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!)
        }
        keepNewestPer("monthly", policy.monthly) { d in
            let c = calendar.dateComponents([.year, .month], from: d)
            return String(format: "%04d-%02d", c.year!, c.month!)
        }
        if let newest = complete.first {
            reasons[newest.0.name, default: []].insert("newest complete backup", at: 0)
        }
        return complete.map { entry, _ in
            let r = reasons[entry.name] ?? []
            return PruneDecision(name: entry.name, keep: !r.isEmpty, reasons: r)
        }
    }

    /// Deletes what `plan` does not keep: only complete backups, whose manifest
    /// reads, are ever planned, so nothing pgvault did not write is deleted. A
    /// backup's manifest is deleted first: from then on it is no backup, so an
    /// interrupted prune never leaves a half-deleted backup that looks
    /// complete (what is left is listed as incomplete).
    public func prune(policy: Policy, dryRun: Bool) throws -> [PruneDecision] {
        let decisions = Self.plan(try entries(), policy: policy)
        guard !dryRun else { return decisions }
        for d in decisions where !d.keep {
            if d.name.hasSuffix(".tar") {
                try store.delete(d.name)
                continue
            }
            let prefix = d.name + "/"
            try store.delete(prefix + Manifest.memberName)
            for object in try store.list(prefix: prefix) { try store.delete(object.key) }
        }
        return decisions
    }
}

/// Prometheus text for node_exporter's textfile collector, written atomically
/// (temporary file, fsync, rename) so the collector never reads half a file.
public enum MetricsFile {
    public static func write(_ path: String, job: String, database: String, success: Bool, summary: BackupSummary?) throws {
        let now = Date().timeIntervalSince1970
        let labels = "job=\"\(escape(job))\",database=\"\(escape(database))\""
        var lines: [String] = []
        func metric(_ name: String, _ help: String, _ value: String) {
            lines.append("# HELP pgvault_\(name) \(help)")
            lines.append("# TYPE pgvault_\(name) gauge")
            lines.append("pgvault_\(name){\(labels)} \(value)")
        }
        metric("last_run_timestamp_seconds", "Time the last run ended.", String(format: "%.0f", now))
        metric("last_run_success", "1 if the last run completed, 0 if it failed.", success ? "1" : "0")
        if let summary, success {
            metric("last_success_timestamp_seconds", "Time the last successful run ended.", String(format: "%.0f", now))
            metric("last_duration_seconds", "Wall time of the last successful run.", String(format: "%.3f", summary.seconds))
            metric("last_bytes", "Archive bytes written by the last successful run.", String(summary.archiveBytes))
            metric("last_rows", "Rows in the last successful run.", String(summary.rows))
        } else if let previous = try? String(contentsOfFile: path, encoding: .utf8) {
            // Keep the previous success's figures so an alert can say how old it is.
            var keep = false
            for line in previous.split(separator: "\n") {
                if line.hasPrefix("# HELP pgvault_last_success") || line.hasPrefix("# HELP pgvault_last_duration")
                    || line.hasPrefix("# HELP pgvault_last_bytes") || line.hasPrefix("# HELP pgvault_last_rows") { keep = true }
                else if line.hasPrefix("# HELP") { keep = false }
                if keep { lines.append(String(line)) }
            }
        }
        try publish(lines, to: path)
    }

    /// Writes `lines` to `path` the safe way: a temporary file, fsync, rename.
    static func publish(_ lines: [String], to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        unlink(tmp)
        let file = try OutputFile(creating: tmp)
        try file.write(Array((lines.joined(separator: "\n") + "\n").utf8))
        try file.close()
        // The textfile collector runs as another user: metrics are not secret.
        chmod(tmp, 0o644)
        try Files.publish(tmp, as: path)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
