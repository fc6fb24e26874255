import Foundation

/// A check's result in the monitoring convention (Nagios plugins): exit status
/// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. SKIPPED is a check the role may not
/// run; it counts as OK (see ``WalStatusReport/status``).
public enum WalCheckStatus: String, Sendable, CaseIterable {
    case ok = "OK", warning = "WARNING", critical = "CRITICAL", unknown = "UNKNOWN", skipped = "SKIPPED"

    public var exitCode: Int32 {
        switch self {
        case .ok, .skipped: return 0
        case .warning: return 1
        case .critical: return 2
        case .unknown: return 3
        }
    }

    /// Which of two results wins: OK < UNKNOWN < WARNING < CRITICAL (the order of
    /// the monitoring plugins' max_state_alt), so a known problem is never hidden
    /// behind "could not tell".
    public var severity: Int {
        switch self {
        case .ok, .skipped: return 0
        case .unknown: return 1
        case .warning: return 2
        case .critical: return 3
        }
    }
}

/// One line of the report.
public struct WalCheck: Sendable {
    public let name: String
    public var status: WalCheckStatus
    public var detail: String
    /// Extra facts for --json (a failing segment, the gaps...).
    public var data: [String: WalJSON]

    public init(_ name: String, _ status: WalCheckStatus, _ detail: String, data: [String: WalJSON] = [:]) {
        self.name = name
        self.status = status
        self.detail = detail
        self.data = data
    }
}

/// The numbers behind the checks, for --json and --prometheus. Nil: not measured.
public struct WalMetrics: Sendable, Equatable {
    public var archivedCount: Int64?
    public var failedCount: Int64?
    public var failing: Bool?
    public var lastArchivedAgeSeconds: Double?
    public var lastFailedAgeSeconds: Double?
    public var backlogSegments: Int64?
    public var oldestReadyAgeSeconds: Double?
    public var distanceSegments: Int64?
    public var distanceBytes: Int64?
    public var archiveSegments: Int64?
    public var archiveGaps: Int64?
    public var archiveWrongSize: Int64?
    public var archiveMissingHistory: Int64?
    public var switchSeconds: Double?
    public var pitrBaseBackups: Int64?
    public var pitrRecoverable: Bool?
    public var pitrWindowStartSeconds: Double?
    public var pitrWindowEndSeconds: Double?
    public var standbyStreaming: Bool?
    public var replayLagBytes: Int64?
    public var replayDelaySeconds: Double?

    public init() {}

    /// (Prometheus name without prefix, JSON key, help, value), in output order.
    var samples: [(prom: String, json: String, help: String, value: Double?)] {
        [
            ("archived_count", "archivedCount", "Segments archived since the archiver's statistics were reset (pg_stat_archiver.archived_count).", archivedCount.map(Double.init)),
            ("failed_count", "failedCount", "Failed archive attempts since the statistics were reset (pg_stat_archiver.failed_count).", failedCount.map(Double.init)),
            ("archiving_failing", "failing", "1 when the last archive attempt failed (last failure newer than last success).", failing.map { $0 ? 1 : 0 }),
            ("last_archived_age_seconds", "lastArchivedAgeSeconds", "Seconds since the last segment was archived successfully.", lastArchivedAgeSeconds),
            ("last_failed_age_seconds", "lastFailedAgeSeconds", "Seconds since the last failed archive attempt.", lastFailedAgeSeconds),
            ("backlog_segments", "backlogSegments", "Files waiting to be archived (.ready files; estimated from WAL positions when the role may not list them).", backlogSegments.map(Double.init)),
            ("oldest_ready_age_seconds", "oldestReadyAgeSeconds", "Seconds the oldest .ready file has been waiting.", oldestReadyAgeSeconds),
            ("distance_segments", "distanceSegments", "Segments from the last archived one to the current WAL file.", distanceSegments.map(Double.init)),
            ("distance_bytes", "distanceBytes", "Bytes of WAL written after the end of the last archived segment.", distanceBytes.map(Double.init)),
            ("archive_segments", "archiveSegments", "Segments present in the archive folder between the start and the last archived segment.", archiveSegments.map(Double.init)),
            ("archive_gaps", "archiveGaps", "Segments missing from the archive folder between the start and the last archived segment.", archiveGaps.map(Double.init)),
            ("archive_wrong_size_segments", "archiveWrongSizeSegments", "Archived segments whose size is not wal_segment_size.", archiveWrongSize.map(Double.init)),
            ("archive_missing_history_files", "archiveMissingHistoryFiles", "Timeline history files missing from the archive folder.", archiveMissingHistory.map(Double.init)),
            ("switch_archive_seconds", "switchArchiveSeconds", "Seconds --switch waited for the new segment to be archived.", switchSeconds),
            ("pitr_base_backups", "pitrBaseBackups", "Base backups found (.backup files in the archive folder, or --base-backup).", pitrBaseBackups.map(Double.init)),
            ("pitr_recoverable", "pitrRecoverable", "1 when a base backup and the WAL after it make point-in-time recovery possible.", pitrRecoverable.map { $0 ? 1 : 0 }),
            ("pitr_window_start_timestamp_seconds", "pitrWindowStartSeconds", "The earliest recoverable time: the stop time of the base backup recovery starts from.", pitrWindowStartSeconds),
            ("pitr_window_end_timestamp_seconds", "pitrWindowEndSeconds", "The latest recoverable time: when the last segment of the unbroken WAL after that backup was archived.", pitrWindowEndSeconds),
            ("standby_streaming", "standbyStreaming", "On a standby: 1 when its WAL receiver is streaming from the primary.", standbyStreaming.map { $0 ? 1 : 0 }),
            ("replay_lag_bytes", "replayLagBytes", "On a standby: WAL received but not yet replayed, in bytes.", replayLagBytes.map(Double.init)),
            ("replay_delay_seconds", "replayDelaySeconds", "On a standby: seconds since the last replayed commit while replay is behind (0 when caught up).", replayDelaySeconds),
        ]
    }
}

/// The result of `pgvault wal-status`: its checks, overall status and numbers.
public struct WalStatusReport: Sendable {
    public var checks: [WalCheck]
    public var metrics: WalMetrics

    public init(checks: [WalCheck], metrics: WalMetrics) {
        self.checks = checks
        self.metrics = metrics
    }

    /// The worst check; SKIPPED counts as OK, UNKNOWN when there is no check at all.
    public var status: WalCheckStatus {
        guard let worst = checks.max(by: { $0.status.severity < $1.status.severity }) else { return .unknown }
        return worst.status == .skipped ? .ok : worst.status
    }

    public var exitCode: Int32 { status.exitCode }

    public func check(_ name: String) -> WalCheck? { checks.first { $0.name == name } }

    /// One line for a monitoring system: `WAL ARCHIVING CRITICAL - archiver: ...`.
    public var summary: String {
        let status = self.status
        let problems = checks.filter { $0.status.severity > 0 && $0.status.severity >= min(status.severity, 2) }
        let text: String
        if problems.isEmpty {
            let skipped = checks.filter { $0.status == .skipped }.map(\.name)
            text = (check("archiver").map(\.detail) ?? "\(checks.count) checks passed")
                + (skipped.isEmpty ? "" : " (skipped: \(skipped.joined(separator: ", ")))")
        } else {
            text = problems.map { "\($0.name): \($0.detail)" }.joined(separator: "; ")
        }
        return "WAL ARCHIVING \(status.rawValue) - \(text)"
    }

    // MARK: - Output formats

    /// The summary line, then one line per check: status, name, detail.
    public func table() -> String {
        let nameWidth = max(5, checks.map(\.name.count).max() ?? 0)
        let statusWidth = 8
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var lines = [summary, pad("STATUS", statusWidth) + "  " + pad("CHECK", nameWidth) + "  DETAIL"]
        for c in checks {
            lines.append(pad(c.status.rawValue, statusWidth) + "  " + pad(c.name, nameWidth) + "  " + c.detail)
        }
        return lines.joined(separator: "\n")
    }

    /// `{status, exitCode, summary, checks: [{name, status, detail, ...}], metrics}`.
    public func json() -> String {
        var metricsObject: [String: WalJSON] = [:]
        for s in metrics.samples {
            if s.json == "failing" {
                metricsObject[s.json] = metrics.failing.map(WalJSON.bool)
            } else if s.json == "pitrRecoverable" {
                metricsObject[s.json] = metrics.pitrRecoverable.map(WalJSON.bool)
            } else if let v = s.value, v.isFinite {
                metricsObject[s.json] = v.rounded() == v && abs(v) < 1e15 ? .int(Int64(v)) : .double(v)
            }
        }
        let object: WalJSON = .object([
            "status": .string(status.rawValue),
            "exitCode": .int(Int64(exitCode)),
            "summary": .string(summary),
            "checks": .array(checks.map { c in
                var o = c.data
                o["name"] = .string(c.name)
                o["status"] = .string(c.status.rawValue)
                o["detail"] = .string(c.detail)
                return .object(o)
            }),
            "metrics": .object(metricsObject),
        ])
        return object.encoded()
    }

    /// The Prometheus text exposition format, for node_exporter's textfile collector.
    /// `labels` are added to every sample (e.g. `cluster="main"`).
    public func prometheus(labels: [(String, String)] = []) -> String {
        func labelText(_ extra: [(String, String)] = []) -> String {
            let all = labels + extra
            if all.isEmpty { return "" }
            return "{" + all.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
        }
        func number(_ v: Double) -> String {
            v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
        }
        var out: [String] = []
        func family(_ name: String, _ help: String, _ samples: [([(String, String)], Double)]) {
            guard !samples.isEmpty else { return }
            out.append("# HELP pgvault_wal_\(name) \(help)")
            out.append("# TYPE pgvault_wal_\(name) gauge")
            for (extra, value) in samples { out.append("pgvault_wal_\(name)\(labelText(extra)) \(number(value))") }
        }
        family("archive_status", "Overall WAL archiving status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
               [([], Double(exitCode))])
        for s in metrics.samples { if let v = s.value, v.isFinite { family(s.prom, s.help, [([], v)]) } }
        family("check_status", "Status of each check that ran: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
               checks.filter { $0.status != .skipped }.map { ([("check", $0.name)], Double($0.status.exitCode)) })
        family("check_skipped", "1 for each check the role was not allowed to run (see --json for the reason).",
               checks.filter { $0.status == .skipped }.map { ([("check", $0.name)], 1) })
        return out.joined(separator: "\n") + "\n"
    }

    static func escapeLabel(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

/// A JSON value with a stable encoding: keys sorted, two-space indentation.
public enum WalJSON: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([WalJSON])
    case object([String: WalJSON])

    public func encoded(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, indent: pretty ? "" : nil)
        return out
    }

    private func write(to out: inout String, indent: String?) {
        let inner = indent.map { $0 + "  " }
        let (open, sep, colon) = indent == nil ? ("", ",", ":") : ("\n" + inner!, ",\n" + inner!, ": ")
        let close = indent.map { "\n" + $0 } ?? ""
        switch self {
        case .string(let s): Self.quote(s, into: &out)
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "[" + open
            for (n, v) in a.enumerated() {
                if n > 0 { out += sep }
                v.write(to: &out, indent: inner)
            }
            out += close + "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{" + open
            for (n, key) in o.keys.sorted().enumerated() {
                if n > 0 { out += sep }
                Self.quote(key, into: &out)
                out += colon
                o[key]!.write(to: &out, indent: inner)
            }
            out += close + "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    static func strings(_ list: [String]) -> WalJSON { .array(list.map(WalJSON.string)) }
}
