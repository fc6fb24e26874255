import Foundation
import PGClient

/// A fact pgvault tried to learn from the server: learned, not allowed for this
/// role (with the reason and the fix), or failed.
public enum WalGathered<T: Sendable>: Sendable {
    case value(T)
    case skipped(String)
    case failed(String)

    public var value: T? {
        if case .value(let v) = self { return v }
        return nil
    }
}

/// `pg_stat_archiver`, with ages measured by the server's clock.
public struct ArchiverStats: Sendable, Equatable {
    public var archivedCount: Int64 = 0
    public var lastArchivedWAL: String?
    public var lastArchivedTime: String?
    public var lastArchivedAge: Double?
    public var failedCount: Int64 = 0
    public var lastFailedWAL: String?
    public var lastFailedTime: String?
    public var lastFailedAge: Double?
    /// The last failure is newer than the last success.
    public var failing = false
    public var statsReset: String?
}

/// Where the server writes (or, on a standby, replays) WAL now.
public struct WalPosition: Sendable, Equatable {
    public var lsn: WalLSN
    public var timeline: UInt32
    public var fileName: String
}

/// The `.ready` files of pg_wal/archive_status: what waits to be archived.
public struct ReadyStats: Sendable, Equatable {
    public var count: Int64
    public var oldest: String?
    public var oldestAge: Double?
}

/// The outcome of `--switch`.
public struct SwitchResult: Sendable, Equatable {
    /// The segment pg_switch_wal() completed.
    public var segment: String
    public var archived: Bool
    public var seconds: Double
    /// Where its arrival was seen: "pg_stat_archiver" or "the archive folder".
    public var seenIn: String?
    /// The archiver's state when pgvault stopped waiting.
    public var archiver: ArchiverStats?
}

/// Everything pgvault learns from the server for wal-status.
public struct WalServerFacts: Sendable {
    public var version = "?"
    public var versionNumber = 0
    public var role = "?"
    public var isSuperuser = false
    public var hasMonitor = false
    public var inRecovery = false
    /// The visible settings among ``WalServerProbe/settingNames``.
    public var settings: [String: String] = [:]
    public var geometry = WalGeometry.standard
    public var archiver: WalGathered<ArchiverStats> = .skipped("not gathered")
    public var position: WalGathered<WalPosition> = .skipped("not gathered")
    public var ready: WalGathered<ReadyStats> = .skipped("not gathered")
    /// Nil when `--switch` was not asked for.
    public var switchResult: WalGathered<SwitchResult>?
    /// On a standby: its replication (``StandbyReplication``).
    public var replication: WalGathered<StandbyReplication> = .skipped("not a standby")

    public var archiveModeOn: Bool {
        settings["archive_mode"] == "always" || (settings["archive_mode"] == "on" && !inRecovery)
    }
}

/// Reads the facts from a connected server. Blocking: run it on a
/// ``PGClient/Blocking`` thread.
public enum WalServerProbe {
    public static let settingNames = [
        "wal_level", "archive_mode", "archive_command", "archive_library", "archive_timeout", "wal_segment_size",
    ]

    public struct SwitchRequest: Sendable {
        public var timeout: Double
        /// Also look for the segment here (a file arriving counts as archived).
        public var archiveDir: String?

        public init(timeout: Double, archiveDir: String? = nil) {
            self.timeout = timeout
            self.archiveDir = archiveDir
        }
    }

    public static func gather(_ conn: PGConnection, switchRequest: SwitchRequest?) throws -> WalServerFacts {
        try conn.execute("SET statement_timeout = '30s'")
        let who = try conn.query("""
            SELECT current_user, r.rolsuper, pg_has_role(current_user, 'pg_monitor', 'USAGE'),
                   pg_is_in_recovery(), current_setting('server_version')
            FROM pg_roles r WHERE r.rolname = current_user
            """)
        let row = try who.firstRow()
        var facts = WalServerFacts(
            version: try row.string(4),
            versionNumber: conn.serverVersionNumber,
            role: try row.string(0),
            isSuperuser: try row.bool(1),
            hasMonitor: try row.bool(2),
            inRecovery: try row.bool(3))

        let settings = try conn.query(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])",
            ["{" + settingNames.joined(separator: ",") + "}"])
        for r in settings.rows {
            let name = try r.string(0)
            if name == "wal_segment_size", let text = r[1], let n = UInt64(text) {
                let bytes = n * unitFactor(r[2] ?? "")
                facts.settings[name] = "\(bytes)"
                facts.geometry = WalGeometry(segmentSize: bytes) ?? .standard
            } else {
                facts.settings[name] = r[1] ?? ""
            }
        }

        facts.switchResult = switchRequest.map { forceSwitch(conn, facts: facts, request: $0) }
        facts.archiver = gathering { try archiverStats(conn) }
        facts.position = gathering { try position(conn, inRecovery: facts.inRecovery) }
        if facts.inRecovery { facts.replication = gathering { try replication(conn) } }
        facts.ready = gathering(
            denied: "listing pg_wal/archive_status with pg_ls_archive_statusdir() needs pg_monitor or superuser "
                + "(GRANT pg_monitor TO \(facts.role))",
            missing: "pg_ls_archive_statusdir() needs PostgreSQL 12 or later"
        ) {
            let r = try conn.query("""
                SELECT count(*), min(name),
                       extract(epoch FROM clock_timestamp() - min(modification))::float8
                FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'
                """)
            let row = try r.firstRow()
            return ReadyStats(
                count: try row.int64(0),
                oldest: try row.optionalString(1).map { String($0.dropLast(".ready".count)) },
                oldestAge: try row.optionalDouble(2))
        }
        return facts
    }

    static func archiverStats(_ conn: PGConnection) throws -> ArchiverStats {
        let iso = #"'YYYY-MM-DD"T"HH24:MI:SS"Z"'"#
        let r = try conn.query("""
            SELECT archived_count, last_archived_wal,
                   to_char(last_archived_time AT TIME ZONE 'UTC', \(iso)),
                   extract(epoch FROM clock_timestamp() - last_archived_time)::float8,
                   failed_count, last_failed_wal,
                   to_char(last_failed_time AT TIME ZONE 'UTC', \(iso)),
                   extract(epoch FROM clock_timestamp() - last_failed_time)::float8,
                   last_failed_time IS NOT NULL
                       AND (last_archived_time IS NULL OR last_failed_time > last_archived_time),
                   to_char(stats_reset AT TIME ZONE 'UTC', \(iso))
            FROM pg_stat_archiver
            """)
        guard let row = r.rows.first, row.count == 10 else {
            throw PGError(kind: .protocolViolation, message: "pg_stat_archiver returned no row")
        }
        return ArchiverStats(
            archivedCount: try row.int64(0), lastArchivedWAL: row[1], lastArchivedTime: row[2],
            lastArchivedAge: try row.optionalDouble(3), failedCount: try row.int64(4),
            lastFailedWAL: row[5], lastFailedTime: row[6], lastFailedAge: try row.optionalDouble(7),
            failing: try row.bool(8), statsReset: row[9])
    }

    static func position(_ conn: PGConnection, inRecovery: Bool) throws -> WalPosition {
        if inRecovery {
            // pg_walfile_name() refuses to run during recovery: name it ourselves.
            let r = try conn.query("""
                SELECT coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text,
                       (SELECT timeline_id FROM pg_control_checkpoint()),
                       (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')
                """)
            guard let row = r.rows.first, let lsn = row[0].flatMap(WalLSN.init), let tli = row[1].flatMap(UInt32.init) else {
                throw PGError(kind: .protocolViolation, message: "no WAL position on this standby yet")
            }
            let geo = row[2].flatMap(UInt64.init).flatMap { WalGeometry(segmentSize: $0) } ?? .standard
            return WalPosition(lsn: lsn, timeline: tli, fileName: geo.fileName(timeline: tli, segment: geo.segmentNumber(containing: lsn)))
        }
        let r = try conn.query("SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())")
        guard let row = r.rows.first, let lsn = row[0].flatMap(WalLSN.init), let file = row[1],
              let tli = WalText.hex32(file.prefix(8)) else {
            throw PGError(kind: .protocolViolation, message: "unexpected answer from pg_current_wal_lsn()")
        }
        return WalPosition(lsn: lsn, timeline: tli, fileName: file)
    }

    /// Completes the current segment with pg_switch_wal() and waits until the
    /// archiver reports it archived (or it appears in the archive folder).
    static func forceSwitch(_ conn: PGConnection, facts: WalServerFacts, request: SwitchRequest) -> WalGathered<SwitchResult> {
        if facts.inRecovery { return .skipped("the server is a standby: pg_switch_wal() runs only on the primary") }
        if !facts.archiveModeOn { return .skipped("archive_mode is off: a new segment would not be archived") }
        // Write a record first, so the switch is not a no-op at a segment start.
        _ = try? conn.query(facts.versionNumber >= 130000 ? "SELECT pg_current_xact_id()" : "SELECT txid_current()")
        let segment: String
        do {
            guard let name = try conn.query("SELECT pg_walfile_name(pg_switch_wal())").scalar else {
                return .failed("pg_switch_wal() returned nothing")
            }
            segment = name
        } catch let error as PGError where error.sqlState == PGError.insufficientPrivilege {
            return .skipped(switchDenied(role: facts.role, monitor: facts.hasMonitor))
        } catch {
            return .failed(WalText.oneLine(error))
        }
        let target = facts.geometry.segmentID(fromName: segment)
        let started = Date()
        var last: ArchiverStats?
        var inFolderSince: Double?
        while true {
            let elapsed = Date().timeIntervalSince(started)
            last = (try? archiverStats(conn)) ?? last
            if let target, let done = last?.lastArchivedWAL.flatMap({ facts.geometry.segmentID(fromName: $0) }),
               done.segment >= target.segment {
                return .value(SwitchResult(segment: segment, archived: true, seconds: elapsed, seenIn: "pg_stat_archiver", archiver: last))
            }
            // A file in the folder may still be being copied: give the archiver two
            // seconds to report success before taking the file's word for it.
            if inFolderSince == nil, let dir = request.archiveDir, WalArchiveListing.contains(directory: dir, segmentName: segment) {
                inFolderSince = elapsed
            }
            if let since = inFolderSince, elapsed - since >= 2 {
                return .value(SwitchResult(segment: segment, archived: true, seconds: since, seenIn: "the archive folder", archiver: last))
            }
            if elapsed >= request.timeout {
                return .value(SwitchResult(segment: segment, archived: false, seconds: elapsed, archiver: last))
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// Why --switch did not run, with the GRANT that lets it (pg_monitor, the
    /// role the runbook recommends for the other checks, does not include it).
    static func switchDenied(role: String, monitor: Bool) -> String {
        "role \(role) may not run pg_switch_wal()" + (monitor ? " (pg_monitor does not include it)" : "")
            + "; as a superuser run GRANT EXECUTE ON FUNCTION pg_switch_wal() TO \(SQL.ident(role)); or run --switch as a superuser"
    }

    private static func gathering<T>(
        denied: String? = nil, missing: String? = nil, _ body: () throws -> T
    ) -> WalGathered<T> {
        do {
            return .value(try body())
        } catch let error as PGError where error.sqlState == PGError.insufficientPrivilege && denied != nil {
            return .skipped(denied!)
        } catch let error as PGError where error.sqlState == PGError.undefinedFunction && missing != nil {
            return .skipped(missing!)
        } catch {
            return .failed(WalText.oneLine(error))
        }
    }

    static func unitFactor(_ unit: String) -> UInt64 {
        switch unit {
        case "kB": return 1 << 10
        case "8kB": return 8 << 10
        case "MB": return 1 << 20
        case "16MB": return 16 << 20
        default: return 1
        }
    }
}
