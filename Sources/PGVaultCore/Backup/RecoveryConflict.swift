import PGClient

/// A backup on a hot standby reads while the standby replays the primary's
/// WAL. When replay must remove row versions the backup's snapshot still
/// sees (a VACUUM on the primary), or take a lock the backup holds (a DDL
/// statement on the primary), the standby waits `max_standby_streaming_delay`
/// and then cancels the backup's query, as it would pg_dump's.
extension PGError {
    /// The server cancelled the statement, or ended the session, because
    /// of a conflict with recovery.
    public var isRecoveryConflict: Bool {
        message.contains("conflict with recovery")
    }

    /// What to change on the standby, said once for every command that reads one.
    public static let recoveryConflictAdvice = """
        the standby cancelled it because of a conflict with recovery (replaying the primary's WAL needed rows \
        or a lock that the backup's snapshot was still using). On the standby, either set hot_standby_feedback = on \
        (the primary then keeps the rows a standby's query still sees, at the cost of some bloat there) or raise \
        max_standby_streaming_delay above the backup's duration (-1 waits without limit, and replay lags meanwhile); \
        reload the standby (SELECT pg_reload_conf()) and run the backup again
        """
}
