import Foundation
import PGClient
import Support

/// Loads synthetic chat data into a migrated, empty database: the same seed
/// always gives the same rows, ids included.
///
/// Tables are loaded with `COPY ... FROM STDIN` in foreign-key order, each in its
/// own transaction, which drops the table's foreign keys before the COPY and
/// adds them again after it: every row is checked, all at once, and no other
/// session ever sees the table without them. (With `config.workers` > 1,
/// messages are loaded over several connections instead, checked row by row.)
/// The servers ↔ channels foreign-key cycle is closed by an UPDATE once
/// channels exist. User triggers are disabled only inside the transactions
/// that would fire them with non-deterministic effects (`updated_at = now()`,
/// and the member counter, which the generator sets itself), and enabled again
/// before commit.
///
/// If a run fails, the tables already committed keep their rows: drop and
/// re-create the database before running again.
public struct DataGenerator: Sendable {
    public let config: GeneratorConfig

    public init(config: GeneratorConfig) {
        self.config = config
    }

    /// Tables the generator fills, in load order.
    public static let tables = [
        "users", "servers", "channels", "roles", "channel_permission_overwrites", "server_members",
        "server_members_roles", "invites", "messages", "message_reactions", "attachments", "audit_logs",
    ]

    /// COPY data is sent in pieces of about this size.
    static let flushBytes = 1 << 20

    public func run(conninfo: String, progress: (String) -> Void = { _ in }) throws -> GeneratorSummary {
        try config.validate()
        let started = ContinuousClock.now
        let conn = try Self.connect(conninfo)
        try preflight(conn)

        var step = ContinuousClock.now
        if config.dailyPartitions > 0 {
            try DailyPartitions.replaceMonthly(conn, table: "messages", days: config.dailyPartitions) {
                progress("\($0) in \(Self.seconds(since: step))")
            }
            step = ContinuousClock.now
        }
        let world = Synth.World(config)
        progress("planned \(world.users) users, \(world.servers) servers, \(world.channels) channels, \(world.memberships) memberships in \(Self.seconds(since: step))")

        var counts: [GeneratorSummary.Table] = []
        func record(_ table: String, _ rows: Int64) {
            counts.append(.init(table: table, rows: rows))
            progress("\(table): \(rows) rows in \(Self.seconds(since: step))")
            step = ContinuousClock.now
        }

        step = ContinuousClock.now
        var users = Synth.UserRows(world: world)
        record("users", try Self.copy(conn, &users))
        var servers = Synth.ServerRows(world: world)
        record("servers", try Self.copy(conn, &servers))
        var channels = Synth.ChannelRows(world: world)
        record("channels", try Self.copy(conn, &channels))
        try linkServerChannels(conn, world)
        var roles = Synth.RoleRows(world: world)
        record("roles", try Self.copy(conn, &roles))
        var overwrites = Synth.OverwriteRows(world: world)
        record("channel_permission_overwrites", try Self.copy(conn, &overwrites))
        // member_count was written with the servers; the trigger would count again.
        var members = Synth.MemberRows(world: world)
        record("server_members", try Self.copy(conn, &members, setup: Setup(disableUserTriggers: true)))
        var memberRoles = Synth.MemberRoleRows(world: world)
        record("server_members_roles", try Self.copy(conn, &memberRoles))
        var invites = Synth.InviteRows(world: world)
        record("invites", try Self.copy(conn, &invites))

        // Messages: one stream (foreign keys re-added at the end), or several
        // connections with a foreign-key check per row. With 2 cores one stream
        // is faster (28 s against 44 s for 1M messages).
        let plan = Synth.MessagePlan(world: world)
        let workers = config.workers
        let messageSources: ParallelResult<Synth.MessageRows>
        if workers > 1 {
            messageSources = try Self.parallel(
                "messages", conninfo: conninfo, workers: workers, expected: Int64(config.messages), progress: progress
            ) { Synth.MessageRows(plan: plan, chunks: plan.chunks(worker: $0, of: workers)) }
        } else {
            var source = Synth.MessageRows(plan: plan, chunks: plan.chunks(worker: 0, of: 1))
            let rows = try Self.copy(conn, &source, report: progress, expected: Int64(config.messages))
            messageSources = ParallelResult(rows: rows, sources: [source])
        }
        record("messages", messageSources.rows)
        var reactions = Synth.ReactionRows(plan: plan, chunks: plan.chunks(worker: 0, of: 1))
        record("message_reactions", try Self.copy(conn, &reactions, report: progress, expected: Int64(config.reactions)))
        var attachments = Synth.AttachmentRows(plan: plan, chunks: plan.chunks(worker: 0, of: 1))
        record("attachments", try Self.copy(conn, &attachments, report: progress, expected: Int64(config.attachments)))
        var auditLogs = Synth.AuditLogRows(world: world)
        record("audit_logs", try Self.copy(conn, &auditLogs))

        try conn.transaction { c in
            try Self.withUserTriggersDisabled(c, "channels") {
                try c.execute("""
                    UPDATE channels ch SET last_message_id = m.last_id
                    FROM (SELECT channel_id, max(id) AS last_id FROM messages WHERE deleted_at IS NULL GROUP BY channel_id) m
                    WHERE ch.id = m.channel_id
                    """)
            }
        }
        progress("channels.last_message_id set in \(Self.seconds(since: step))")
        if config.analyze {
            step = ContinuousClock.now
            try conn.execute("ANALYZE " + Self.tables.joined(separator: ", "))
            progress("analyzed in \(Self.seconds(since: step))")
        }

        var perAuthor = [Int64](repeating: 0, count: world.users)
        for source in messageSources.sources {
            for (u, n) in source.authorCounts.enumerated() { perAuthor[u] += Int64(n) }
        }
        let heaviest = perAuthor.indices.max { perAuthor[$0] < perAuthor[$1] || (perAuthor[$0] == perAuthor[$1] && $0 > $1) } ?? 0
        let elapsed = ContinuousClock.now - started
        return GeneratorSummary(
            seed: config.seed, users: config.users, messages: config.messages, tables: counts,
            heaviestUserID: world.userIDs[heaviest], heaviestUserMessages: perAuthor[heaviest],
            seconds: Self.seconds(elapsed))
    }

    // MARK: - Checks

    static func connect(_ conninfo: String) throws -> PGConnection {
        let conn = try PGConnection(conninfo: conninfo, applicationName: "pgvault generate")
        try conn.execute("SET client_encoding = 'UTF8'; SET synchronous_commit = off")
        return conn
    }

    private func preflight(_ conn: PGConnection) throws {
        let encoding = try conn.query("SELECT current_setting('server_encoding')").firstRow().string(0)
        guard encoding == "UTF8" else {
            throw GeneratorError("the database encoding is \(encoding); the generated text (Korean, emoji, ...) needs a UTF8 database")
        }
        for table in Self.tables {
            guard try conn.query("SELECT to_regclass($1) IS NOT NULL", [table]).scalar == "t" else {
                throw GeneratorError("table \(table) does not exist in this database: run pgvault migrate first")
            }
        }
        if try conn.query("SELECT EXISTS (SELECT 1 FROM users)").scalar == "t" {
            throw GeneratorError("users already has rows: generate into a freshly migrated, empty database")
        }
    }

    // MARK: - Loading

    /// What else a table's load transaction does.
    struct Setup {
        /// The table's foreign keys are dropped before the load and added again
        /// after it (same name, same definition), which checks every row at
        /// once: much cheaper than a check per row, above all against the
        /// partitioned messages (a per-row check locks every partition and
        /// index). Not possible when several connections load one table.
        var rebuildForeignKeys = true
        /// The table's enabled user triggers are disabled during the load.
        var disableUserTriggers = false
    }

    /// Streams one source into its table in one transaction; `report` gets a
    /// line every few seconds, `onFlush` the rows sent so far.
    static func copy<S: Synth.RowSource>(
        _ conn: PGConnection, _ source: inout S, setup: Setup = Setup(),
        report: (String) -> Void = { _ in }, expected: Int64 = 0,
        shouldStop: () -> Bool = { false }, onFlush: (Int64) -> Void = { _ in }
    ) throws -> Int64 {
        let sql = source.copySQL
        let fields = source.columns.count
        let table = source.table
        let started = ContinuousClock.now
        var lastReport = started
        func load() throws -> Int64 {
            var buffer = Synth.CopyBuffer(capacity: flushBytes + (64 << 10))
            buffer.expectedFields = fields
            return try conn.copyIn(sql) { w in
                while source.emit(into: &buffer) {
                    guard buffer.bytes.count >= flushBytes else { continue }
                    if shouldStop() { throw GeneratorError("stopped: another worker failed") }
                    try w.write(buffer.bytes)
                    buffer.clear()
                    onFlush(buffer.rows)
                    if ContinuousClock.now - lastReport > .seconds(5) {
                        lastReport = ContinuousClock.now
                        report("\(table): \(buffer.rows) rows\(percent(buffer.rows, of: expected)), \(seconds(since: started))")
                    }
                }
                if !buffer.bytes.isEmpty { try w.write(buffer.bytes) }
                onFlush(buffer.rows)
            }
        }
        return try conn.transaction { c in
            try withForeignKeysRebuilt(c, table, setup.rebuildForeignKeys) {
                setup.disableUserTriggers ? try withUserTriggersDisabled(c, table) { try load() } : try load()
            }
        }
    }

    static func percent(_ rows: Int64, of expected: Int64) -> String {
        expected > 0 ? " (~\(min(100, rows * 100 / expected))%)" : ""
    }

    /// Runs `body` with the table's foreign keys dropped (if `rebuild`), then
    /// adds them again, which checks every row at once: inside the caller's
    /// transaction, so no other session sees the table without them.
    static func withForeignKeysRebuilt<T>(
        _ conn: PGConnection, _ table: String, _ rebuild: Bool, _ body: () throws -> T
    ) throws -> T {
        guard rebuild else { return try body() }
        let keys = try conn.query("""
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = $1::regclass AND contype = 'f' AND conparentid = 0
            ORDER BY conname
            """, [table]).rows.map { (name: try $0.string(0), definition: try $0.string(1)) }
        for key in keys {
            try conn.execute("ALTER TABLE \(SQL.ident(table)) DROP CONSTRAINT \(SQL.ident(key.name))")
        }
        let value = try body()
        for key in keys {
            try conn.execute("ALTER TABLE \(SQL.ident(table)) ADD CONSTRAINT \(SQL.ident(key.name)) \(key.definition)")
        }
        return value
    }

    /// Runs `body` with the table's enabled user triggers disabled, inside the
    /// caller's transaction; they are enabled again before it commits, so no
    /// other session ever sees them disabled.
    static func withUserTriggersDisabled<T>(_ conn: PGConnection, _ table: String, _ body: () throws -> T) throws -> T {
        let names = try conn.query(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal AND tgenabled = 'O' ORDER BY tgname",
            [table]
        ).rows.compactMap { $0[0] }
        for name in names { try conn.execute("ALTER TABLE \(SQL.ident(table)) DISABLE TRIGGER \(SQL.ident(name))") }
        let value = try body()
        for name in names { try conn.execute("ALTER TABLE \(SQL.ident(table)) ENABLE TRIGGER \(SQL.ident(name))") }
        return value
    }

    /// servers.system_channel_id / rules_channel_id reference channels, which
    /// reference servers: the servers went in with NULLs, now they get their
    /// channels (updated_at kept as generated).
    private func linkServerChannels(_ conn: PGConnection, _ world: Synth.World) throws {
        try conn.transaction { _ in try Self.withUserTriggersDisabled(conn, "servers") {
            try conn.execute("""
                CREATE TEMP TABLE pgvault_generate_server_channels
                    (id bigint PRIMARY KEY, system_channel_id bigint, rules_channel_id bigint) ON COMMIT DROP
                """)
            try conn.copyIn("COPY pgvault_generate_server_channels FROM STDIN") { w in
                var buffer = Synth.CopyBuffer(capacity: 1 << 16)
                for s in 0..<world.servers {
                    let system = Int(world.serverSystemChannel[s]), rules = Int(world.serverRulesChannel[s])
                    guard system >= 0 || rules >= 0 else { continue }
                    buffer.int(world.serverIDs[s])
                    buffer.int(system >= 0 ? world.channelIDs[system] : nil)
                    buffer.int(rules >= 0 ? world.channelIDs[rules] : nil)
                    buffer.endRow()
                    if buffer.bytes.count >= Self.flushBytes {
                        try w.write(buffer.bytes)
                        buffer.clear()
                    }
                }
                try w.write(buffer.bytes)
            }
            try conn.execute("""
                UPDATE servers s SET system_channel_id = t.system_channel_id, rules_channel_id = t.rules_channel_id
                FROM pgvault_generate_server_channels t WHERE s.id = t.id
                """)
        } }
    }

    /// Rows loaded by the workers of one table, and the sources (with whatever
    /// they tallied).
    struct ParallelResult<S> {
        var rows: Int64
        var sources: [S]
    }

    /// Loads one table over `workers` connections, one ``WorkerPool`` worker
    /// each, streaming its share of chunks in its own transaction; reports
    /// progress every few seconds. It runs on a thread of its own (the
    /// command's `Blocking.run`, or a test's), which waits for the pool and
    /// polls the rows sent; a cancellation of that thread cancels the pool.
    static func parallel<S: Synth.RowSource & Sendable>(
        _ table: String, conninfo: String, workers: Int, expected: Int64,
        progress: (String) -> Void, make: @escaping @Sendable (Int) -> S
    ) throws -> ParallelResult<S> {
        let sent = Locked([Int64](repeating: 0, count: workers))
        let outcome = Locked<Result<[(source: S, rows: Int64)], any Error>>(.failure(CancellationError()))
        let done = DispatchSemaphore(value: 0)
        let pool = Task {
            defer { done.signal() }
            do {
                let loaded = try await WorkerPool.run(
                    Array(0..<workers), jobs: workers, name: "pgvault-generate-\(table)",
                    makeWorker: { context in
                        let conn = try connect(conninfo)
                        context.cancels(conn)
                        return conn
                    },
                    body: { conn, w in
                        var source = make(w)
                        let rows = try copy(
                            conn, &source, setup: Setup(rebuildForeignKeys: false),
                            shouldStop: { Cancellation.isCancelled }, onFlush: { n in sent.withLock { $0[w] = n } })
                        return (source: source, rows: rows)
                    })
                outcome.withLock { $0 = .success(loaded) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }
        let started = ContinuousClock.now
        var lastReport = started
        while done.wait(timeout: .now() + 0.1) == .timedOut {
            if Cancellation.isCancelled { pool.cancel() }
            guard ContinuousClock.now - lastReport >= .seconds(5) else { continue }
            lastReport = ContinuousClock.now
            let rows = sent.withLock { $0.reduce(0, +) }
            if expected > 0 && rows >= expected {
                progress("\(table): all \(rows) rows sent, the server is checking foreign keys, \(seconds(since: started))")
            } else {
                progress("\(table): \(rows) rows\(percent(rows, of: expected)), \(seconds(since: started))")
            }
        }
        let loaded = try outcome.value.get()
        return ParallelResult(rows: loaded.reduce(0) { $0 + $1.rows }, sources: loaded.map(\.source))
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func seconds(since start: ContinuousClock.Instant) -> String {
        String(format: "%.1f s", seconds(ContinuousClock.now - start))
    }
}
