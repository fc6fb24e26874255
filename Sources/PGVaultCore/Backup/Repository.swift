import Foundation

/// A folder of backups for the nightly job. Each backup is an archive directory
/// named `<database>-<YYYYMMDDTHHMMSSZ>`; a backup still running (or one that
/// died) is a hidden `.<name>.partial-<pid>` folder, which is never listed as
/// complete and never used by a restore.
public struct Repository: Sendable {
    public let path: String

    public init(path: String) throws {
        self.path = path
        if !Files.exists(path) {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    public struct Entry: Codable, Sendable {
        public var name: String
        public var path: String
        public var status: String  // complete | incomplete
        public var database: String?
        public var startedAt: String?
        public var completedAt: String?
        public var seconds: Double?
        public var rows: Int64?
        public var bytes: Int64
        public var units: Int?
    }

    /// A new backup's path: `<database>-<UTC time>`.
    public func newBackupPath(database: String, at date: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let safe = database.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }
        return path + "/" + String(safe) + "-" + f.string(from: date)
    }

    /// Every backup, newest first.
    public func entries() throws -> [Entry] {
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
        var out: [Entry] = []
        // <repo>/cold holds cold storage (archive-partitions), not a backup.
        for name in names where name != ColdStore.folderName {
            let full = path + "/" + name
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), isDir.boolValue else { continue }
            let bytes = Self.size(of: full)
            if name.hasPrefix(".") {
                if name.contains(".partial-") {
                    out.append(Entry(name: name, path: full, status: "incomplete", bytes: bytes))
                }
                continue
            }
            guard let source = try? Archive.open(full), let m = try? Archive.manifest(of: source) else {
                out.append(Entry(name: name, path: full, status: "incomplete", bytes: bytes))
                continue
            }
            let seconds = ISO8601.parse(m.completedAt).flatMap { end in ISO8601.parse(m.startedAt).map { end.timeIntervalSince($0) } }
            out.append(Entry(
                name: name, path: full, status: "complete", database: m.database.name, startedAt: m.startedAt,
                completedAt: m.completedAt, seconds: seconds, rows: m.units.reduce(0) { $0 + $1.rows }, bytes: bytes,
                units: m.units.count))
        }
        return out.sorted { ($0.startedAt ?? $0.name) > ($1.startedAt ?? $1.name) }
    }

    static func size(of dir: String) -> Int64 {
        var total: Int64 = 0
        if let walker = FileManager.default.enumerator(atPath: dir) {
            while let rel = walker.nextObject() as? String {
                if let attrs = try? FileManager.default.attributesOfItem(atPath: dir + "/" + rel),
                   attrs[.type] as? FileAttributeType == .typeRegular {
                    total += (attrs[.size] as? NSNumber)?.int64Value ?? 0
                }
            }
        }
        return total
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

    /// Deletes what `plan` does not keep. A backup is first renamed to a hidden
    /// name, so an interrupted prune never leaves a half-deleted backup that
    /// looks complete.
    public func prune(policy: Policy, dryRun: Bool) throws -> [PruneDecision] {
        let decisions = Self.plan(try entries(), policy: policy)
        guard !dryRun else { return decisions }
        for d in decisions where !d.keep {
            let doomed = path + "/.\(d.name).deleting"
            guard rename(path + "/" + d.name, doomed) == 0 else {
                throw FileError(operation: "rename for deletion", path: path + "/" + d.name)
            }
            try FileManager.default.removeItem(atPath: doomed)
        }
        try Files.syncDirectory(path)
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
