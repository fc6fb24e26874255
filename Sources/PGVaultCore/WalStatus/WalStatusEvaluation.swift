import Foundation

/// Limits for the monitoring checks.
public struct WalThresholds: Sendable, Equatable {
    /// Seconds. WARNING when the last successful archive is older, CRITICAL when
    /// twice as old; only while something waits to be archived.
    public var maxAge: Double?
    /// Files waiting. WARNING above, CRITICAL above twice.
    public var maxBacklog: Int64?
    /// Seconds, on a standby: WARNING when replay is further behind the
    /// primary's last commit, CRITICAL at twice.
    public var maxReplayLag: Double?

    public init(maxAge: Double? = nil, maxBacklog: Int64? = nil, maxReplayLag: Double? = nil) {
        self.maxAge = maxAge
        self.maxBacklog = maxBacklog
        self.maxReplayLag = maxReplayLag
    }
}

/// Everything the checks are judged from. Built by ``WalStatusRunner``; tests
/// build it by hand.
public struct WalStatusInput: Sendable {
    public enum Server: Sendable {
        /// `--offline`: no connection was attempted.
        case offline
        case unreachable(String)
        case connected(WalServerFacts)
    }

    public enum ArchiveState: Sendable {
        case listing(WalArchiveListing)
        case unreadable(PGVaultError)
    }

    public var server: Server
    /// Nil without --archive-dir.
    public var archive: ArchiveState?
    public var archiveDir: String?
    /// Nil: from the oldest segment present. An error: the start could not be read.
    public var start: Result<WalStartPoint, PGVaultError>?
    /// The base backup the operator named (`--base-backup`); nil: the archive's
    /// `.backup` files.
    public var baseBackup: Result<WalBaseBackup, PGVaultError>?
    public var thresholds: WalThresholds
    /// Seconds since the epoch.
    public var now: Double

    public init(
        server: Server, archive: ArchiveState? = nil, archiveDir: String? = nil,
        start: Result<WalStartPoint, PGVaultError>? = nil, baseBackup: Result<WalBaseBackup, PGVaultError>? = nil,
        thresholds: WalThresholds = WalThresholds(), now: Double = Date().timeIntervalSince1970
    ) {
        self.server = server
        self.archive = archive
        self.archiveDir = archiveDir ?? {
            if case .listing(let l)? = archive { return l.directory }
            return nil
        }()
        self.start = start
        self.baseBackup = baseBackup
        self.thresholds = thresholds
        self.now = now
    }
}

/// Turns the facts into checks. Pure: no I/O, so every rule is unit-tested.
///
/// Rules:
/// - could not connect: `connection` UNKNOWN;
/// - wal_level minimal, archive_mode off, an empty or do-nothing archive_command:
///   `settings` CRITICAL with the fix;
/// - archiving failing now (last failure newer than last success): `archiver`
///   CRITICAL naming `last_failed_wal`;
/// - `--max-age`: `archive-age` WARNING past it, CRITICAL past twice it, while
///   something waits to be archived (an idle server has nothing to archive);
/// - `--max-backlog N`: `backlog` WARNING above N waiting files, CRITICAL above 2N;
/// - on a standby, `replication` (``standbyCheck(_:archiveDir:_:_:)``), and
///   archive_mode off is no fault there: the primary archives;
/// - `--switch`: CRITICAL if the segment is not archived in time;
/// - archive folder: no base backup to recover from, or the WAL after the newest
///   usable one broken (`pitr`); a gap, a wrong-size segment (a short one breaks
///   the chain like a missing one), a history file recovery needs that is
///   missing: CRITICAL;
/// - a check the role may not run is SKIPPED (counts as OK) with the reason,
///   except one asked for on the command line (`--switch`, `--archive-dir`),
///   which is WARNING.
public enum WalStatusEvaluator {
    public static func evaluate(_ input: WalStatusInput) -> WalStatusReport {
        var checks: [WalCheck] = []
        var m = WalMetrics()
        var facts: WalServerFacts?
        switch input.server {
        case .offline:
            checks.append(WalCheck("connection", .skipped, "--offline: only the archive folder is checked"))
        case .unreachable(let message):
            checks.append(WalCheck("connection", .unknown, message))
        case .connected(let f):
            facts = f
            checks.append(connectionCheck(f))
            checks.append(settingsCheck(f, archiveDir: input.archiveDir))
            if f.inRecovery { checks.append(standbyCheck(f, archiveDir: input.archiveDir, input.thresholds, &m)) }
            if f.inRecovery && f.settings["archive_mode"] != "always" {
                let why = "this server is a standby and archive_mode is not 'always': the primary archives; run wal-status against the primary"
                checks += ["archiver", "backlog"].map { WalCheck($0, .skipped, "skipped: \(why)") }
            } else {
                checks += archiverChecks(f, input.thresholds, &m)
                checks.append(backlogCheck(f, input.thresholds, &m))
            }
            if let s = f.switchResult { checks.append(switchCheck(s, &m)) }
        }
        if let dir = input.archiveDir, let archive = input.archive {
            checks += archiveChecks(dir: dir, archive, input, facts: facts, &m)
        }
        return WalStatusReport(checks: checks, metrics: m)
    }

    // MARK: - Server checks

    static func connectionCheck(_ f: WalServerFacts) -> WalCheck {
        let privileges = f.isSuperuser ? "superuser"
            : f.hasMonitor ? "pg_monitor, not superuser"
            : "neither superuser nor pg_monitor: some checks are limited"
        return WalCheck(
            "connection", .ok,
            "PostgreSQL \(f.version) as \(f.role) (\(privileges))" + (f.inRecovery ? "; standby (in recovery)" : ""),
            data: ["role": .string(f.role), "superuser": .bool(f.isSuperuser), "pgMonitor": .bool(f.hasMonitor),
                   "serverVersion": .string(f.version), "inRecovery": .bool(f.inRecovery)])
    }

    /// The archive_command pgvault suggests.
    static func suggestedCommand(_ dir: String?) -> String {
        let d = (dir ?? "/path/to/archive").replacingOccurrences(of: "'", with: "''")
        return "'test ! -f \(d)/%f && cp %p \(d)/%f'"
    }

    /// Why the fix says ALTER SYSTEM: a value set that way (postgresql.auto.conf)
    /// overrides postgresql.conf, so an edit there may change nothing.
    static let alterSystemNote = "(ALTER SYSTEM writes postgresql.auto.conf, which overrides postgresql.conf)"

    static func settingsCheck(_ f: WalServerFacts, archiveDir: String?) -> WalCheck {
        let s = f.settings
        var shown: [String] = []
        var visible: [String: WalJSON] = [:]
        for name in WalServerProbe.settingNames {
            if let v = s[name] { visible[name] = .string(v) }
        }
        var data: [String: WalJSON] = ["settings": .object(visible)]
        shown.append("wal_level=\(s["wal_level"] ?? "?")")
        shown.append("archive_mode=\(s["archive_mode"] ?? "?")")
        let command = s["archive_command"], library = s["archive_library"]
        if let library, !library.isEmpty {
            shown.append("archive_library=\(library)")
        } else if let command {
            shown.append("archive_command='\(command)'")
        } else {
            shown.append("archive_command not visible to \(f.role) (needs pg_read_all_settings)")
        }
        if let t = s["archive_timeout"] {
            shown.append(t == "0" ? "archive_timeout=0 (off)" : "archive_timeout=\(t)s")
        }
        shown.append("wal_segment_size=\(f.geometry.display)")
        let settings = shown.joined(separator: " ")

        var problem: String?
        var fix = ""
        let mode = s["archive_mode"]
        let minimal = s["wal_level"] == "minimal"
        if mode == "off" && f.inRecovery && !minimal {
            return WalCheck(
                "settings", .ok,
                "\(settings) (standby: the primary archives; this standby archives nothing. archive_mode = always would archive here too, "
                    + "and after a promotion archive_mode must be on)",
                data: data)
        } else if mode == "off" || minimal {
            problem = minimal
                ? "wal_level is minimal and archive_mode is \(mode ?? "?"), so WAL cannot be archived and point-in-time recovery is not possible"
                : "archive_mode is off, so no WAL is archived and point-in-time recovery is not possible"
            fix = "\(minimal ? "ALTER SYSTEM SET wal_level = replica; " : "")ALTER SYSTEM SET archive_mode = on; "
                + "ALTER SYSTEM SET archive_command = \(suggestedCommand(archiveDir)); then restart PostgreSQL \(alterSystemNote)"
        } else if mode == "on" || mode == "always" {
            let noLibrary = library?.isEmpty ?? (f.versionNumber < 150000)
            let trimmed = command.map { WalText.trim($0) }
            if noLibrary, trimmed == "" {
                problem = "archive_mode is \(mode!) but archive_command is empty: WAL piles up in pg_wal and nothing is archived"
                fix = "ALTER SYSTEM SET archive_command = \(suggestedCommand(archiveDir)); SELECT pg_reload_conf(); \(alterSystemNote)"
            } else if noLibrary, let trimmed, ["true", "/bin/true", "/usr/bin/true", ":", "exit 0"].contains(trimmed) {
                problem = "archive_command '\(trimmed)' reports success without keeping the WAL: nothing can be recovered from it"
                fix = "ALTER SYSTEM SET archive_command = \(suggestedCommand(archiveDir)); SELECT pg_reload_conf(); \(alterSystemNote)"
            }
        } else if mode == nil {
            return WalCheck("settings", .unknown, "archive_mode is not visible: \(settings)", data: data)
        }
        if let problem {
            data["fix"] = .string(fix)
            return WalCheck("settings", .critical, "\(problem). Fix: \(fix). Now: \(settings)", data: data)
        }
        var notes = ""
        if f.inRecovery && mode == "on" { notes = " (standby: with archive_mode = on only the primary archives)" }
        return WalCheck("settings", .ok, settings + notes, data: data)
    }

    static func archiverChecks(_ f: WalServerFacts, _ t: WalThresholds, _ m: inout WalMetrics) -> [WalCheck] {
        let a: ArchiverStats
        switch f.archiver {
        case .skipped(let why): return [WalCheck("archiver", .skipped, "skipped: \(why)")]
        case .failed(let why): return [WalCheck("archiver", .unknown, "cannot read pg_stat_archiver: \(why)")]
        case .value(let v): a = v
        }
        m.archivedCount = a.archivedCount
        m.failedCount = a.failedCount
        m.failing = a.failing
        m.lastArchivedAgeSeconds = a.lastArchivedAge
        m.lastFailedAgeSeconds = a.lastFailedAge
        var data: [String: WalJSON] = [
            "archivedCount": .int(a.archivedCount), "failedCount": .int(a.failedCount), "failing": .bool(a.failing),
        ]
        data["lastArchivedWal"] = a.lastArchivedWAL.map(WalJSON.string)
        data["lastArchivedTime"] = a.lastArchivedTime.map(WalJSON.string)
        data["lastFailedWal"] = a.lastFailedWAL.map(WalJSON.string)
        data["lastFailedTime"] = a.lastFailedTime.map(WalJSON.string)
        data["statsReset"] = a.statsReset.map(WalJSON.string)

        let success = a.lastArchivedWAL.map { "\($0) \(ago(a.lastArchivedAge))" }
            ?? "none since the statistics reset at \(a.statsReset ?? "?")"
        let failure = a.lastFailedWAL.map { "\($0) \(ago(a.lastFailedAge))" } ?? "-"
        var checks: [WalCheck] = []
        if a.failing {
            data["segment"] = a.lastFailedWAL.map(WalJSON.string)
            checks.append(WalCheck(
                "archiver", .critical,
                "archiving is failing: archive_command failed for \(a.lastFailedWAL ?? "?") \(ago(a.lastFailedAge)) "
                    + "(\(a.failedCount) failed attempts in all); last success: \(success). "
                    + "The server log has the command's error",
                data: data))
        } else if a.archivedCount == 0 && a.lastArchivedWAL == nil && !f.archiveModeOn {
            checks.append(WalCheck("archiver", .ok, "nothing archived (archive_mode is not on)", data: data))
        } else {
            var text = a.lastArchivedWAL == nil ? "nothing archived since the statistics reset at \(a.statsReset ?? "?")"
                : "\(WalText.count(a.archivedCount, "file")) archived, last \(success)"
            if a.failedCount > 0 { text += "; \(a.failedCount) failed attempts, last for \(failure), since recovered" }
            checks.append(WalCheck("archiver", .ok, text, data: data))
        }
        guard f.archiveModeOn else { return checks }

        // The age of the last success, held against --max-age while something waits.
        let waiting = waitingFiles(f)
        let limit = t.maxAge.map { " (--max-age \(DurationText.format($0)))" } ?? ""
        guard let age = a.lastArchivedAge else {
            if let waiting, waiting > 0 {
                checks.append(WalCheck("archive-age", .warning, "nothing archived yet while \(WalText.count(waiting, "file")) wait\(limit)"))
            } else {
                checks.append(WalCheck("archive-age", .ok, "nothing archived yet; no completed segment waits\(limit)"))
            }
            return checks
        }
        var status = WalCheckStatus.ok
        var text = "last success \(ago(age)), at \(a.lastArchivedTime ?? "?")"
        if let maxAge = t.maxAge {
            if waiting == 0 {
                text += "; nothing waits to be archived, so the age is no problem\(limit)"
            } else if age > 2 * maxAge {
                status = .critical
                text += ", more than twice --max-age \(DurationText.format(maxAge))"
            } else if age > maxAge {
                status = .warning
                text += ", more than --max-age \(DurationText.format(maxAge))"
            } else {
                text += "; within --max-age \(DurationText.format(maxAge))"
            }
        }
        checks.append(WalCheck("archive-age", status, text, data: ["ageSeconds": .double(age.rounded())]))
        return checks
    }

    /// Files waiting to be archived: the .ready count, else an estimate from the
    /// WAL positions (completed segments after the last archived one).
    static func waitingFiles(_ f: WalServerFacts) -> Int64? {
        if let r = f.ready.value { return r.count }
        return distance(f).map { max(0, $0.segments - 1) }
    }

    static func distance(_ f: WalServerFacts) -> (segments: Int64, bytes: Int64, current: String, last: String)? {
        guard let p = f.position.value, let lastName = f.archiver.value?.lastArchivedWAL,
              let last = f.geometry.segmentID(fromName: lastName) else { return nil }
        let current = f.geometry.segmentNumber(containing: p.lsn)
        let endOfLast = f.geometry.startLSN(ofSegment: last.segment + 1).value
        return (Int64(current) - Int64(last.segment),
                p.lsn.value > endOfLast ? Int64(p.lsn.value - endOfLast) : 0,
                f.geometry.fileName(timeline: p.timeline, segment: current), lastName)
    }

    static func backlogCheck(_ f: WalServerFacts, _ t: WalThresholds, _ m: inout WalMetrics) -> WalCheck {
        var parts: [String] = []
        var data: [String: WalJSON] = [:]
        let d = distance(f)
        if let d {
            m.distanceSegments = d.segments
            m.distanceBytes = d.bytes
            data["distanceSegments"] = .int(d.segments)
            data["distanceBytes"] = .int(d.bytes)
            data["currentWalFile"] = .string(d.current)
        }
        var count: Int64?
        switch f.ready {
        case .value(let r):
            count = r.count
            m.oldestReadyAgeSeconds = r.oldestAge
            data["readyFiles"] = .int(r.count)
            data["oldestReady"] = r.oldest.map(WalJSON.string)
            var text = "\(WalText.count(r.count, "file")) waiting to be archived (.ready)"
            if r.count > 0, let oldest = r.oldest { text += ", oldest \(oldest) waiting \(r.oldestAge.map(DurationText.format) ?? "?")" }
            parts.append(text)
        case .skipped(let why), .failed(let why):
            data["skipped"] = .string(why)
            if let d {
                count = max(0, d.segments - 1)
                parts.append("about \(WalText.count(count!, "segment")) waiting (estimated; .ready files not listed: \(why))")
            } else {
                parts.append(".ready files not listed: \(why)")
            }
        }
        if let d {
            parts.append("current WAL file \(d.current) is \(WalText.count(d.segments, "segment")), \(WalText.bytes(UInt64(d.bytes))) of WAL past the end of the last archived \(d.last)")
        } else if case .failed(let why) = f.position {
            parts.append("WAL position unknown: \(why)")
        }
        m.backlogSegments = count
        guard let count else {
            let status: WalCheckStatus = { if case .failed = f.ready { return .unknown }; return .skipped }()
            return WalCheck("backlog", status, parts.joined(separator: "; "), data: data)
        }
        var status = WalCheckStatus.ok
        if let n = t.maxBacklog {
            if count > 2 * n {
                status = .critical
                parts.append("more than twice --max-backlog \(n)")
            } else if count > n {
                status = .warning
                parts.append("more than --max-backlog \(n)")
            } else {
                parts.append("--max-backlog \(n)")
            }
        }
        return WalCheck("backlog", status, parts.joined(separator: "; "), data: data)
    }

    static func switchCheck(_ g: WalGathered<SwitchResult>, _ m: inout WalMetrics) -> WalCheck {
        switch g {
        case .skipped(let why):
            return WalCheck("switch", .warning, "skipped: \(why)", data: ["skipped": .string(why)])
        case .failed(let why):
            return WalCheck("switch", .unknown, "pg_switch_wal() failed: \(why)")
        case .value(let s):
            var data: [String: WalJSON] = ["segment": .string(s.segment), "archived": .bool(s.archived),
                                             "seconds": .double((s.seconds * 1000).rounded() / 1000)]
            if s.archived {
                m.switchSeconds = s.seconds
                data["seenIn"] = s.seenIn.map(WalJSON.string)
                return WalCheck(
                    "switch", .ok,
                    "pg_switch_wal() completed \(s.segment); archived after \(String(format: "%.1f", s.seconds))s (seen in \(s.seenIn ?? "?"))",
                    data: data)
            }
            var text = "pg_switch_wal() completed \(s.segment) but it was not archived within \(DurationText.format(s.seconds))"
            if let a = s.archiver, a.failing, let failed = a.lastFailedWAL {
                text += "; archive_command failed for \(failed) (\(a.failedCount) failed attempts in all)"
            }
            return WalCheck("switch", .critical, text, data: data)
        }
    }

    // MARK: - Archive folder checks

    static func archiveChecks(
        dir: String, _ archive: WalStatusInput.ArchiveState, _ input: WalStatusInput,
        facts: WalServerFacts?, _ m: inout WalMetrics
    ) -> [WalCheck] {
        let listing: WalArchiveListing
        switch archive {
        case .unreadable(let error):
            if error.kind == .io {  // there, but not readable by this user
                return [WalCheck("archive-dir", .warning, "skipped: \(error) (run pgvault as a user who may read the archive)")]
            }
            return [WalCheck("archive-dir", .critical, "\(error): no WAL archive there")]
        case .listing(let l): listing = l
        }
        var query = WalArchiveQuery(now: input.now)
        if let facts {
            query.geometry = facts.geometry
            query.targetTimeline = facts.position.value?.timeline
                ?? facts.archiver.value?.lastArchivedWAL.flatMap { RawSegmentName($0)?.timeline }
            query.lastArchived = facts.archiver.value?.lastArchivedWAL
        }
        var checks: [WalCheck] = [WalRecoveryWindow.check(listing, query, named: input.baseBackup, &m)]
        switch input.start {
        case .failure(let error)?:
            checks.append(WalCheck("archive-gaps", .unknown, "cannot tell where to start: \(error)"))
        case .success(let point)?:
            query.start = point.lsn
            query.startTimeline = point.timeline
            query.startSource = point.source
        case nil: break
        }
        let a = WalArchiveAnalysis.analyze(listing, query)
        m.archiveSegments = Int64(a.segmentsInRange)
        m.archiveGaps = Int64(a.missingSegments)
        m.archiveWrongSize = Int64(a.wrongSize.count)
        m.archiveMissingHistory = Int64(a.missingHistory.count)

        // Contiguity.
        if !checks.contains(where: { $0.name == "archive-gaps" }) {
            var data: [String: WalJSON] = [
                "directory": .string(dir), "start": a.start.map(WalJSON.string) ?? .null,
                "end": a.end.map(WalJSON.string) ?? .null, "startSource": .string(a.startSource),
                "segments": .int(Int64(a.segmentsInRange)), "missing": .int(Int64(a.missingSegments)),
            ]
            if !a.gaps.isEmpty || !a.damaged.isEmpty {
                var parts: [String] = []
                if !a.gaps.isEmpty {
                    data["gaps"] = .array(a.gaps.map { .object(["first": .string($0.first), "last": .string($0.last), "count": .int(Int64($0.count))]) })
                    data["missingSegments"] = WalJSON.strings(a.missingNames)
                    var text = "\(WalText.count(a.missingSegments, "segment")) missing between \(a.start ?? "?") (\(a.startSource)) and \(a.end ?? "?"): "
                    text += a.gaps.prefix(10).map { $0.count == 1 ? $0.first : "\($0.first)..\($0.last) (\($0.count))" }.joined(separator: ", ")
                    if a.gaps.count > 10 { text += " and \(a.gaps.count - 10) more gaps" }
                    if a.segmentsInRange == 0 { text += "; the folder holds none of them: is \(dir) the folder archive_command writes to?" }
                    parts.append(text)
                }
                if !a.damaged.isEmpty {
                    // Present, but replay stops at them as at a missing one.
                    data["damagedSegments"] = WalJSON.strings(a.damaged.map(\.name))
                    parts.append("\(WalText.count(a.damaged.count, "segment")) damaged between \(a.start ?? "?") and \(a.end ?? "?"): "
                        + a.damaged.prefix(10).map { "\($0.name) (\($0.size) of \(a.geometry.segmentSize) bytes)" }.joined(separator: ", "))
                }
                checks.append(WalCheck("archive-gaps", .critical, parts.joined(separator: "; "), data: data))
            } else if let first = a.startSegment, let last = a.endSegment, first > last, let start = a.start, let end = a.end {
                checks.append(WalCheck(
                    "archive-gaps", .ok, "nothing to check yet: the start \(start) (\(a.startSource)) is after the last archived segment \(end)",
                    data: data))
            } else if a.start == nil {
                checks.append(WalCheck("archive-gaps", .ok, "no WAL segments in \(dir) yet, and none archived", data: data))
            } else {
                checks.append(WalCheck(
                    "archive-gaps", .ok,
                    "\(WalText.count(a.segmentsInRange, "segment")) contiguous from \(a.start!) (\(a.startSource)) to \(a.end!)", data: data))
            }
        }

        // Timeline history files.
        let tlText = "timeline \(a.targetTimeline)" + (a.path.map { $0.count > 1 ? " (path \($0.map(String.init).joined(separator: " → ")))" : "" } ?? "")
        let required = a.missingHistory.filter(\.required)
        var historyData: [String: WalJSON] = ["timeline": .int(Int64(a.targetTimeline)), "historyFiles": WalJSON.strings(a.historyFiles)]
        if !a.missingHistory.isEmpty { historyData["missing"] = WalJSON.strings(a.missingHistory.map(\.fileName)) }
        if !required.isEmpty {
            checks.append(WalCheck(
                "archive-history", .critical,
                "missing \(required.map(\.fileName).joined(separator: ", ")): recovery from \(a.start ?? "the start") cannot follow the timeline switch to \(tlText)",
                data: historyData))
        } else if !a.missingHistory.isEmpty || !a.unreadableHistory.isEmpty {
            let parts = a.missingHistory.map { "missing \($0.fileName)" } + a.unreadableHistory
            checks.append(WalCheck("archive-history", .warning, parts.joined(separator: "; ") + "; \(tlText)", data: historyData))
        } else {
            let files = a.historyFiles.isEmpty ? "no history files needed" : "history files: \(a.historyFiles.joined(separator: ", "))"
            checks.append(WalCheck("archive-history", .ok, "\(tlText); \(files)", data: historyData))
        }

        // Sizes and the other files.
        var sizeData: [String: WalJSON] = [
            "segmentSize": .int(Int64(a.geometry.segmentSize)), "segmentSizeFrom": .string(a.geometrySource),
            "segmentFiles": .int(Int64(a.segmentFiles)), "compressed": .int(Int64(a.compressedSegments)),
            "partial": WalJSON.strings(a.partials), "backupLabels": WalJSON.strings(a.backupLabels),
            "unrecognized": WalJSON.strings(Array(a.unrecognized.prefix(100))),
        ]
        let plainRight = a.segmentFiles - a.compressedSegments - a.wrongSize.filter { WalArchiveName($0.name)?.compression == nil }.count
        var inventory = "\(WalText.count(a.segmentFiles, "segment file")): \(plainRight) of \(a.geometry.display) (size from \(a.geometrySource))"
        if a.compressedSegments > 0 { inventory += ", \(a.compressedSegments) compressed (.gz/.zst/.lz4...; size not checked)" }
        if !a.wrongSize.isEmpty { inventory += ", \(a.wrongSize.count) of the wrong size" }
        if !a.partials.isEmpty { inventory += ", \(a.partials.count) .partial" }
        if !a.backupLabels.isEmpty { inventory += ", \(WalText.count(a.backupLabels.count, ".backup label"))" }
        if !a.unrecognized.isEmpty { inventory += ", \(WalText.count(a.unrecognized.count, "other file")) ignored" }
        let old = a.wrongSize.filter { !$0.recent }, recent = a.wrongSize.filter(\.recent)
        if !a.wrongSize.isEmpty {
            sizeData["wrongSize"] = .array(a.wrongSize.map { .object(["name": .string($0.name), "size": .int(Int64($0.size))]) })
        }
        func list(_ w: [WalArchiveAnalysis.WrongSize]) -> String {
            w.prefix(10).map { "\($0.name) (\($0.short ? "short" : "too long"): \($0.size) bytes)" }.joined(separator: ", ") + (w.count > 10 ? " and \(w.count - 10) more" : "")
        }
        if !old.isEmpty {
            checks.append(WalCheck(
                "archive-sizes", .critical,
                "\(WalText.count(old.count, "segment")) of the wrong size (not \(a.geometry.segmentSize) bytes): \(list(old)); \(inventory)", data: sizeData))
        } else if !recent.isEmpty || !a.impossibleNames.isEmpty {
            var parts: [String] = []
            if !recent.isEmpty { parts.append("\(WalText.count(recent.count, "segment")) of the wrong size written in the last minute (still being copied?): \(list(recent))") }
            if !a.impossibleNames.isEmpty {
                parts.append("\(WalText.count(a.impossibleNames.count, "name")) that cannot exist with \(a.geometry.display) segments: \(a.impossibleNames.prefix(5).joined(separator: ", "))")
            }
            checks.append(WalCheck("archive-sizes", .warning, parts.joined(separator: "; ") + "; \(inventory)", data: sizeData))
        } else {
            checks.append(WalCheck("archive-sizes", .ok, inventory, data: sizeData))
        }
        return checks
    }

    /// `3s ago`, `4m10s ago`, `never`.
    static func ago(_ seconds: Double?) -> String {
        guard let seconds else { return "(time unknown)" }
        return DurationText.format(seconds) + " ago"
    }
}
