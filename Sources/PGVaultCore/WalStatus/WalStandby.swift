import Foundation
import PGClient

/// What a hot standby says of its replication: is WAL arriving, how far
/// replay is behind, and where it would fetch WAL from if streaming broke.
public struct StandbyReplication: Sendable, Equatable {
    /// pg_stat_wal_receiver.status (`streaming`, `catchup`...); nil: no WAL
    /// receiver runs.
    public var receiverStatus: String?
    /// The primary it streams from: host and port only (primary_conninfo
    /// may hold a password, so it is never read).
    public var senderHost: String?
    public var senderPort: Int?
    /// Seconds since the last message from the primary.
    public var lastMessageAge: Double?
    public var receiveLSN: String?
    public var replayLSN: String?
    /// WAL received but not yet replayed.
    public var replayLagBytes: Int64?
    /// Seconds since the last replayed commit while replay is behind; 0 when
    /// it has replayed all it received.
    public var replayDelay: Double?
    public var replayPaused = false
    /// restore_command: "" when unset, nil when this role may not see it.
    public var restoreCommand: String?

    public init() {}
}

extension WalServerProbe {
    static func replication(_ conn: PGConnection) throws -> StandbyReplication {
        let r = try conn.query("""
            SELECT w.status, w.sender_host, w.sender_port,
                   extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time)::float8,
                   pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                   pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint,
                   CASE WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                        ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 END,
                   pg_is_wal_replay_paused()
            FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true
            """)
        let row = try r.firstRow()
        var s = StandbyReplication()
        s.receiverStatus = try row.optionalString(0)
        s.senderHost = try row.optionalString(1)
        s.senderPort = try row.optionalInt(2)
        s.lastMessageAge = try row.optionalDouble(3)
        s.receiveLSN = try row.optionalString(4)
        s.replayLSN = try row.optionalString(5)
        s.replayLagBytes = try row.optionalInt64(6)
        s.replayDelay = try row.optionalDouble(7)
        s.replayPaused = try row.bool(8)
        // Superuser-only (or pg_read_all_settings): unknown rather than a failure.
        s.restoreCommand = try? conn.query("SELECT current_setting('restore_command')").scalar
        return s
    }
}

extension WalStatusEvaluator {
    /// `replication`, on a standby: CRITICAL when no WAL arrives at all (no
    /// receiver streaming and no restore_command); WARNING when it only
    /// restores from the archive, when replay is paused, or past
    /// `--max-replay-lag` (CRITICAL past twice it).
    static func standbyCheck(_ f: WalServerFacts, archiveDir: String?, _ t: WalThresholds, _ m: inout WalMetrics) -> WalCheck {
        let s: StandbyReplication
        switch f.replication {
        case .skipped(let why): return WalCheck("replication", .skipped, "skipped: \(why)")
        case .failed(let why): return WalCheck("replication", .unknown, "cannot read the standby's replication state: \(why)")
        case .value(let v): s = v
        }
        let streaming = s.receiverStatus == "streaming"
        m.standbyStreaming = streaming
        m.replayLagBytes = s.replayLagBytes
        m.replayDelaySeconds = s.replayDelay
        var data: [String: WalJSON] = ["streaming": .bool(streaming), "replayPaused": .bool(s.replayPaused)]
        data["receiverStatus"] = s.receiverStatus.map(WalJSON.string)
        data["senderHost"] = s.senderHost.map(WalJSON.string)
        data["senderPort"] = s.senderPort.map { .int(Int64($0)) }
        data["receiveLsn"] = s.receiveLSN.map(WalJSON.string)
        data["replayLsn"] = s.replayLSN.map(WalJSON.string)
        data["replayLagBytes"] = s.replayLagBytes.map(WalJSON.int)
        data["replayDelaySeconds"] = s.replayDelay.map(WalJSON.double)
        data["restoreCommand"] = s.restoreCommand.map(WalJSON.string)

        let from = s.senderHost.map { "from \($0)" + (s.senderPort.map { ":\($0)" } ?? "") } ?? "from its primary"
        let behind = "received \(s.receiveLSN ?? "nothing"), replayed \(s.replayLSN ?? "nothing")"
            + (s.replayLagBytes.map { $0 > 0 ? ", replay \(WalText.bytes(UInt64($0))) behind" : ", replay caught up" } ?? "")
            + (s.replayDelay.map { $0 > 0 ? " (last replayed commit \(ago($0)))" : "" } ?? "")
        let archive = archiveDir.map { "the archive \($0) is checked below" }
            ?? "give --archive-dir (the primary's archive as this host sees it) to check that this standby reaches it"
        let restore: String
        switch s.restoreCommand {
        case nil: restore = "restore_command not visible to \(f.role)"
        case ""?: restore = "no restore_command: if streaming breaks it cannot catch up from the archive"
        case let command?: restore = "restore_command '\(command)'"
        }

        guard streaming else {
            if let command = s.restoreCommand, command.isEmpty {
                return WalCheck("replication", .critical,
                    "no WAL arrives: no WAL receiver is streaming (status \(s.receiverStatus ?? "none")) and restore_command is empty; "
                        + "check primary_conninfo, the primary's pg_hba.conf and max_wal_senders, and this standby's server log. \(behind)", data: data)
            }
            return WalCheck("replication", .warning,
                "not streaming (WAL receiver \(s.receiverStatus ?? "not running")): it replays only what \(restore) fetches; "
                    + "check primary_conninfo and this standby's server log. \(behind); \(archive)", data: data)
        }
        var status = WalCheckStatus.ok
        var problems: [String] = []
        if s.replayPaused {
            status = .warning
            problems.append("replay is paused (SELECT pg_wal_replay_resume() resumes it)")
        }
        if let limit = t.maxReplayLag, let delay = s.replayDelay, delay > limit {
            status = delay > 2 * limit ? .critical : .warning
            problems.append("replay is \(Int(delay)) s behind, over --max-replay-lag \(Int(limit)) s")
        }
        let text = (problems.isEmpty ? "" : problems.joined(separator: "; ") + ". ")
            + "streaming \(from); \(behind); \(restore); \(archive)"
        return WalCheck("replication", status, text, data: data)
    }
}
