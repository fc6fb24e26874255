import Foundation

/// A physical base backup (`pg_basebackup`, or `pg_backup_start`/`pg_backup_stop`
/// around a file copy): the only kind of backup WAL can be replayed onto, so the
/// start of every point-in-time recovery. pgvault's own backups are logical (rows,
/// not data files) and are no such start.
///
/// Read from a backup history file the server archives when a backup ends
/// (`000000010000000000000002.00000028.backup`), from a `backup_label`, or from
/// the `WAL-Ranges` of a `backup_manifest`.
public struct WalBaseBackup: Sendable, Equatable {
    /// Where it was read: an archive file name or the path the operator gave.
    public var source: String
    public var label: String?
    /// START WAL LOCATION: recovery replays WAL from here.
    public var start: WalLSN
    public var startTimeline: UInt32
    /// STOP WAL LOCATION: the backup is consistent once WAL is replayed to here.
    /// Nil when only a backup_label was found (it is written before the backup ends).
    public var stop: WalLSN?
    public var stopTimeline: UInt32?
    /// As the server wrote them (its log_timezone), e.g. `2026-12-04 07:30:01 UTC`.
    public var startTime: String?
    public var stopTime: String?
    /// `streamed` (pg_basebackup) or `pg_backup_start`.
    public var method: String?

    public init(source: String, label: String? = nil, start: WalLSN, startTimeline: UInt32, stop: WalLSN? = nil,
                stopTimeline: UInt32? = nil, startTime: String? = nil, stopTime: String? = nil, method: String? = nil) {
        self.source = source
        self.label = label
        self.start = start
        self.startTimeline = startTimeline
        self.stop = stop
        self.stopTimeline = stopTimeline
        self.startTime = startTime
        self.stopTime = stopTime
        self.method = method
    }

    /// Parses a backup history file or a backup_label (both are `KEY: value`
    /// lines; a label lacks the STOP lines). Nil without a START WAL LOCATION.
    public static func parseLabel(_ text: String, source: String) -> WalBaseBackup? {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[WalText.trim(line[..<colon])] = WalText.trim(line[line.index(after: colon)...])
        }
        // "0/2000028 (file 000000010000000000000002)": the LSN, and the timeline of the named file.
        func location(_ key: String) -> (WalLSN, UInt32?)? {
            guard let value = fields[key], let lsn = WalLSN(String(value.prefix { $0 != " " })) else { return nil }
            let file = value.split(separator: " ").last.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "()")) }
            return (lsn, file.flatMap { RawSegmentName($0)?.timeline })
        }
        guard let (start, startFileTLI) = location("START WAL LOCATION") else { return nil }
        let stop = location("STOP WAL LOCATION")
        return WalBaseBackup(
            source: source, label: fields["LABEL"], start: start,
            startTimeline: fields["START TIMELINE"].flatMap { UInt32($0) } ?? startFileTLI ?? 1,
            stop: stop?.0, stopTimeline: fields["STOP TIMELINE"].flatMap { UInt32($0) } ?? stop?.1,
            startTime: fields["START TIME"], stopTime: fields["STOP TIME"], method: fields["BACKUP METHOD"])
    }

    /// Reads the `WAL-Ranges` of a backup_manifest (PostgreSQL 13+): the WAL the
    /// backup needs, from the start of the oldest range to the end of the newest.
    public static func parseManifest(_ bytes: [UInt8], source: String) -> WalBaseBackup? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
              let ranges = object["WAL-Ranges"] as? [[String: Any]] else { return nil }
        let parsed = ranges.compactMap { r -> (UInt32, WalLSN, WalLSN)? in
            guard let tli = (r["Timeline"] as? Int).flatMap({ UInt32(exactly: $0) }),
                  let start = (r["Start-LSN"] as? String).flatMap(WalLSN.init),
                  let end = (r["End-LSN"] as? String).flatMap(WalLSN.init) else { return nil }
            return (tli, start, end)
        }
        guard let first = parsed.min(by: { $0.1 < $1.1 }), let last = parsed.max(by: { $0.2 < $1.2 }) else { return nil }
        return WalBaseBackup(source: source, start: first.1, startTimeline: first.0, stop: last.2, stopTimeline: last.0)
    }

    /// `label` and `start` from the first, the end from the second when the first has none.
    func filling(from other: WalBaseBackup) -> WalBaseBackup {
        var merged = self
        if merged.stop == nil { (merged.stop, merged.stopTimeline) = (other.stop, other.stopTimeline) }
        merged.label = merged.label ?? other.label
        merged.startTime = merged.startTime ?? other.startTime
        merged.stopTime = merged.stopTime ?? other.stopTime
        merged.method = merged.method ?? other.method
        return merged
    }

    /// `the base backup "nightly" (000000010000000000000002.00000028.backup)`.
    public var display: String {
        "base backup " + (label.map { "\"\($0)\" " } ?? "") + "(\(source))"
    }

    /// Seconds since the epoch of a time as PostgreSQL writes it in a backup
    /// label (`2026-12-04 07:30:01 UTC`, or with another zone abbreviation or a
    /// numeric offset); nil when the zone is not one Foundation knows.
    public static func epoch(_ text: String) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count == 3 else { return nil }
        let zoneText = String(parts[2])
        let zone: TimeZone? = {
            if let z = TimeZone(abbreviation: zoneText) { return z }
            // "+02", "-0530": seconds east of UTC.
            guard let sign = zoneText.first, sign == "+" || sign == "-" else { return nil }
            let digits = zoneText.dropFirst()
            guard digits.allSatisfy(\.isNumber), let n = Int(digits) else { return nil }
            let seconds = digits.count <= 2 ? n * 3600 : (n / 100) * 3600 + (n % 100) * 60
            return TimeZone(secondsFromGMT: sign == "-" ? -seconds : seconds)
        }()
        guard let zone else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.date(from: "\(parts[0]) \(parts[1])")?.timeIntervalSince1970
    }
}

/// Reads a base backup the operator names (`--base-backup`). Blocking (reads files).
public enum WalBaseBackupReader {
    /// `path` is a base backup folder (plain `-Fp`: backup_label and backup_manifest;
    /// tar `-Ft`: base.tar and backup_manifest), a `backup_label`, a `backup_manifest`
    /// or a `.backup` history file. A pgvault backup is refused with the reason.
    public static func read(_ path: String) throws -> WalBaseBackup {
        if let why = pgvaultBackupError(path) { throw PGVaultError.archive(why) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PGVaultError.archive("--base-backup \(path) does not exist")
        }
        if !isDir.boolValue {
            let bytes = try small(path)
            if bytes.first == UInt8(ascii: "{") {
                guard let b = WalBaseBackup.parseManifest(bytes, source: path) else {
                    throw PGVaultError.archive("--base-backup \(path) is JSON but has no WAL-Ranges: not a backup_manifest")
                }
                return b
            }
            guard let b = WalBaseBackup.parseLabel(String(decoding: bytes, as: UTF8.self), source: path) else {
                throw PGVaultError.archive("--base-backup \(path) has no START WAL LOCATION: not a backup_label, backup_manifest or .backup file")
            }
            return b
        }
        let manifest = (try? small(path + "/backup_manifest")).flatMap { WalBaseBackup.parseManifest($0, source: path) }
        var labelBytes = try? small(path + "/backup_label")
        if labelBytes == nil {
            for tar in ["base.tar", "base.tar.gz", "base.tar.zst", "base.tar.lz4"]
            where FileManager.default.fileExists(atPath: path + "/" + tar) {
                var bytes: [UInt8] = []
                try? Archive.open(path + "/" + tar).readMember("backup_label") { bytes.append(contentsOf: $0) }
                if !bytes.isEmpty { labelBytes = bytes; break }
            }
        }
        let label = labelBytes.flatMap { WalBaseBackup.parseLabel(String(decoding: $0, as: UTF8.self), source: path) }
        switch (label, manifest) {
        case (let l?, let m?): return l.filling(from: m)
        case (let l?, nil): return l
        case (nil, let m?): return m
        case (nil, nil):
            throw PGVaultError.archive(
                "--base-backup \(path) holds no backup_label or backup_manifest: not a pg_basebackup folder "
                    + "(name the folder pg_basebackup -D wrote, or its backup_label or backup_manifest)")
        }
    }

    /// The explanation when `path` is a pgvault backup (a folder or tar file with
    /// manifest.json, or that manifest.json); nil otherwise.
    public static func pgvaultBackupError(_ path: String) -> String? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
        var bytes: [UInt8] = []
        if !isDir.boolValue, let data = FileManager.default.contents(atPath: path), data.first == UInt8(ascii: "{") {
            bytes = Array(data.prefix(1 << 20))
        } else if isDir.boolValue && !FileManager.default.fileExists(atPath: path + "/" + Manifest.memberName) {
            return nil
        } else {
            try? Archive.open(path).readMember(Manifest.memberName) { chunk in
                if bytes.count < 1 << 20 { bytes.append(contentsOf: chunk) }
            }
        }
        let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
        guard text.contains("\"pgvault-archive\"") || text.contains("\"walLSN\"") else { return nil }
        return "\(path) is a pgvault backup: a logical copy (rows, restored with pgvault restore), and no WAL can be "
            + "replayed onto it, so it is no start for point-in-time recovery (its manifest's walLSN only records "
            + "where the server's WAL stood when its snapshot was taken). Point-in-time recovery starts from a "
            + "physical base backup (pg_basebackup): name its folder, backup_label or backup_manifest with "
            + "--base-backup, or let --archive-dir find the .backup files the server archives"
    }

    /// A file of at most 16 MiB.
    static func small(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw PGVaultError.archive("cannot read \(path)") }
        defer { try? handle.close() }
        let data = handle.readData(ofLength: 16 << 20)
        return Array(data)
    }
}
