import CryptoDigest
import Foundation
import PGClient

/// Restores an archive into a database.
///
/// Full restore (an empty target): pre-data schema (one transaction, with the
/// journal), data units in parallel, post-data in phases (keys, indexes,
/// index attachments, foreign keys, the rest) with the parallel ones over
/// --jobs connections, then sequence values.
///
/// --data-only (a prepared target): the archive's tables are checked against
/// the target's first (nothing changes if anything differs); missing
/// partitions are created; the foreign keys touching the loaded tables are
/// dropped and their user triggers disabled (both journaled), so load order
/// and FK cycles do not matter and triggers do not fire twice; the data
/// loads; the foreign keys are added back (which validates them) and the
/// triggers re-enabled; sequences are advanced (never moved back).
///
/// Each unit loads in its own transaction with its journal entry; a damaged
/// member makes COPY fail, so its transaction rolls back. See ``RestoreJournal``.
public enum RestoreEngine {
    public static func run(_ given: RestoreOptions) async throws -> RestoreSummary {
        let started = Date()
        let log = given.log ?? { _ in }
        let (options, spool) = try await readingStandardInput(given, log: log)
        defer { withExtendedLifetime(spool) {} }
        let (manifest, archiveID) = try await Blocking.run("pgvault-restore-manifest") {
            let source = try Archive.open(options.archivePath)
            let manifest = try Archive.manifest(of: source)
            return (manifest, try SHA2.hex(.sha256, of: manifest.encoded()))
        }
        if !options.dataOnly && manifest.schema == nil {
            throw RestoreError("\(options.archiveName) holds no schema (it is a --data-only backup): restore it into a prepared database with --data-only")
        }
        let selected = try LoadPlan.select(
            manifest, tables: options.tables, exclude: options.excludeTables, window: options.window,
            includeDefault: options.includeDefaultPartitions)
        // Every member this restore reads is there, whole, before the target changes.
        try await Blocking.run("pgvault-restore-members") {
            do {
                try Archive.checkMembers(
                    neededMembers(manifest, selected: selected, dataOnly: options.dataOnly),
                    in: try Archive.open(options.archivePath), label: options.archiveName)
            } catch let error as ArchiveFormatError {
                throw RestoreError(error.description + " Nothing was changed in the target database.")
            }
        }

        let leader = try await Blocking.run("pgvault-restore-connect") {
            try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore")
        }
        let context = Context(options: options, manifest: manifest, archiveID: archiveID, selected: selected, leader: leader, log: log)
        let prepared = try await Blocking.run("pgvault-restore-prepare", on: leader) { [context] _ in
            try context.prepare()
        }

        // Data.
        let monitor = LoadMonitor(
            total: prepared.plan.loads.count, bytesTotal: prepared.plan.loads.reduce(0) { $0 + $1.unit.rawBytes },
            skipped: prepared.finished)
        let reporter = options.progress.map { callback in
            Task.detached {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if Task.isCancelled { break }
                    callback(monitor.snapshot())
                }
            }
        }
        defer { reporter?.cancel() }
        let pending = prepared.plan.loads.filter { prepared.finished[$0.unit.id] == nil }
        if pending.count < prepared.plan.loads.count {
            log("resuming: \(prepared.plan.loads.count - pending.count) of \(prepared.plan.loads.count) units were loaded before")
        }
        log("loading \(pending.count) units over \(max(1, min(options.jobs, pending.count))) connections")
        let loadStart = Date()
        try await UnitLoader.load(pending, options: options, encoding: manifest.database.encoding, monitor: monitor)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        options.progress?(monitor.snapshot())

        // Schema after data, or the target's own constraints back.
        let postStart = Date()
        var postDataStatements = 0
        let constraintNotes = Notes()
        if !options.dataOnly, let schema = manifest.schema {
            postDataStatements = try await PostData.run(
                schema: schema, manifest: manifest, options: options, monitor: monitor, notes: constraintNotes, log: log)
        } else {
            try await Reattach.run(options: options, leader: leader, monitor: monitor, notes: constraintNotes, log: log)
        }
        let postDataSeconds = Date().timeIntervalSince(postStart)

        // Nothing is marked finished once the run is cancelled: --resume goes on from here.
        try Task.checkCancellation()
        let finish = try await Blocking.run("pgvault-restore-finish", on: leader) { [context] _ in
            try context.finish(plan: prepared.plan)
        }
        if options.analyze {
            log("analyzing \(finish.analyzeTables.count) tables")
            monitor.beginPhase("analyze", total: finish.analyzeTables.count)
            try await Workers.run(finish.analyzeTables, jobs: options.jobs, conninfo: options.conninfo, name: "analyze",
                                  setup: { try Session.prepare($0, options) }) { conn, table in
                try conn.execute("ANALYZE \(table)")
                monitor.stepDone()
            }
        }

        var verifyOK: Bool?
        var verifyFailures: [String] = []
        if options.verify {
            monitor.beginPhase("verify")
            log("verifying the restored tables against the archive")
            let restored = Set(prepared.plan.loads.map(\.unit.id))
            let report = try await Verifier.checkRestored(
                archivePath: options.archivePath, conninfo: options.conninfo, jobs: options.jobs,
                units: restored.count == manifest.units.count ? nil : restored, extraRelations: [],
                trustValidatedForeignKeys: !options.dataOnly, progress: nil)
            verifyOK = report.ok
            verifyFailures = report.failures.map { "\($0.check) \($0.object)\($0.constraint.map { " \($0)" } ?? ""): \($0.detail)" }
            log(report.summary)
        }

        let totals = monitor.snapshot()
        return RestoreSummary(
            status: verifyOK == false ? "verify-failed" : "complete", archive: options.archive, database: prepared.database,
            mode: options.dataOnly ? "data-only" : "full", resumed: options.resume,
            units: totals.unitsDone, unitsSkipped: prepared.finished.count, rows: totals.rows, bytes: totals.bytes,
            seconds: Date().timeIntervalSince(started), loadSeconds: loadSeconds, postDataSeconds: postDataSeconds,
            createdPartitions: prepared.created, routedUnits: prepared.plan.loads.filter(\.routed).count,
            rowsInDefaultPartitions: finish.rowsInDefault, postDataStatements: postDataStatements,
            sequences: finish.sequences, dropped: prepared.dropped,
            verify: verifyOK.map { $0 ? "ok" : "failed" } ?? "skipped", verifyOK: verifyOK, verifyFailures: verifyFailures,
            notes: prepared.plan.notes + constraintNotes.all + finish.notes)
    }

    // MARK: - Before loading

    /// `-`: standard input copied to a temporary file (``ArchiveSpool`` says
    /// why), which the returned spool keeps until the restore ends.
    static func readingStandardInput(
        _ options: RestoreOptions, log: @Sendable (String) -> Void
    ) async throws -> (RestoreOptions, ArchiveSpool?) {
        guard options.archive == "-" else { return (options, nil) }
        let spool = try await ArchiveSpool.standardInput()
        log("copied the archive from standard input to \(spool.path) (\(spool.bytes) bytes; removed at the end)")
        var options = options
        options.spooledArchive = spool.path
        return (options, spool)
    }

    /// The schema members (unless --data-only) and the selected tables' units.
    static func neededMembers(_ manifest: Manifest, selected: [Manifest.Table], dataOnly: Bool) -> [Archive.ExpectedMember] {
        var out: [Archive.ExpectedMember] = []
        if !dataOnly, let schema = manifest.schema {
            out.append(.init(name: schema.preData.member, bytes: schema.preData.bytes, what: "the pre-data schema"))
            out.append(.init(name: schema.postData.member, bytes: schema.postData.bytes, what: "the post-data schema"))
        }
        let tables = Set(selected.map(\.qualifiedName))
        for u in manifest.units where tables.contains(u.qualifiedTable) {
            out.append(.init(name: u.member, bytes: u.compressedBytes, what: "unit \(u.id) of table \(u.qualifiedTable)"))
        }
        return out
    }

    struct Prepared: Sendable {
        var plan: LoadPlan
        var finished: [String: Int64]
        var created: [String]
        var dropped: [String]
        var database: String
    }

    struct Finished: Sendable {
        var sequences: Int
        var rowsInDefault: [String: Int64]
        var analyzeTables: [String]
        var notes: [String]
    }

    /// Everything the leader connection does, on its own thread.
    struct Context: Sendable {
        let options: RestoreOptions
        let manifest: Manifest
        let archiveID: String
        let selected: [Manifest.Table]
        let leader: PGConnection
        let log: @Sendable (String) -> Void

        /// Checks the target, applies the schema (full) or detaches
        /// constraints (data-only), creates partitions; returns the plan.
        func prepare() throws -> Prepared {
            try Session.prepare(leader, options)
            let database = try leader.query("SELECT current_database()").firstRow().string(0)
            try checkEncoding(database)
            try lock(database)
            let state = try RestoreJournal.state(leader)
            var dropped: [String] = []
            var createdBefore: [String] = []
            if options.resume {
                guard let state else {
                    throw RestoreError("--resume: database \(database) holds no journal of an interrupted restore (schema \(RestoreJournal.schema)); the restore finished, or never started. Run without --resume.")
                }
                guard state.archiveID == archiveID else {
                    throw RestoreError("--resume: the interrupted restore in \(database) was of another archive (\(state.archive), started \(state.startedAt)); resume it with that archive, or drop schema \(RestoreJournal.schema) to abandon it")
                }
                guard state.fingerprint == options.fingerprint else {
                    throw RestoreError("--resume: the interrupted restore was started with other options (\(state.fingerprint)); resume with the same --data-only/--table/--exclude-table/--since/--until/--include-default/--no-create-partitions")
                }
                log("resuming the restore of \(state.archive) started \(state.startedAt)")
            } else if let state {
                let done = try RestoreJournal.finishedUnits(leader).count
                throw RestoreError("database \(database) holds the journal of an unfinished restore of \(state.archive) (started \(state.startedAt), \(done) units loaded). Run the same command with --resume to finish it, or drop schema \(RestoreJournal.schema) to abandon it (what was loaded stays).")
            } else if !options.dataOnly {
                dropped = try applyPreData(database: database)
            }

            // Plan, creating missing partitions until none is missing.
            var failed = Set<String>()
            var created: [String] = []
            var plan: LoadPlan
            var rounds = 0
            while true {
                let target = try RestoreTarget.facts(leader)
                plan = LoadPlan.make(
                    manifest: manifest, selected: selected, target: target, dataOnly: options.dataOnly,
                    createPartitions: options.createPartitions, failedCreations: failed, order: options.order)
                if !plan.differences.isEmpty {
                    throw RestoreError("the target does not match the archive; nothing was loaded. What differs:\n"
                        + plan.differences.map { "  - \($0)" }.joined(separator: "\n"))
                }
                rounds += 1
                if plan.creations.isEmpty || rounds > 16 { break }
                for c in plan.creations {
                    do {
                        try leader.transaction { conn in
                            try conn.execute(c.sql)
                            if try RestoreJournal.exists(conn) { try RestoreJournal.recordStep(conn, "created:\(c.schema).\(c.name)") }
                        }
                        created.append("\(c.schema).\(c.name)")
                        log("created partition \(c.schema).\(c.name) of \(c.parentSchema).\(c.parentName) \(c.bound)")
                    } catch let error as PGError where error.sqlState == PGError.invalidObjectDefinition {
                        // Overlaps the target's partitions without being identical: route instead.
                        failed.insert(c.archived)
                        log("not creating \(c.schema).\(c.name): \(error.message); its rows go through \(c.parentSchema).\(c.parentName)")
                    } catch let error as PGError where error.sqlState == PGError.checkViolation {
                        throw RestoreError("cannot create partition \(c.schema).\(c.name) of \(c.parentSchema).\(c.parentName) \(c.bound): the target's DEFAULT partition already holds rows in that range (\(error.message)). Move those rows out of the DEFAULT partition, or restore with --no-create-partitions to route the archive's rows through the parent.")
                    }
                }
            }

            var finished: [String: Int64] = [:]
            if options.resume {
                finished = try RestoreJournal.finishedUnits(leader)
                createdBefore = try RestoreJournal.steps(leader).filter { $0.hasPrefix("created:") }.map { String($0.dropFirst(8)) }.sorted()
            } else if options.dataOnly {
                try startDataOnly(plan: plan, created: created)
            }
            return Prepared(plan: plan, finished: finished, created: createdBefore + created, dropped: dropped, database: database)
        }

        /// Binary COPY carries text in the source's encoding and the server
        /// does not convert it, so binary units need a target in the same one.
        func checkEncoding(_ database: String) throws {
            guard manifest.units.contains(where: { $0.format == .binary }) else { return }
            let target = try leader.query("SELECT pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database WHERE datname = current_database()").firstRow().string(0)
            guard target == manifest.database.encoding else {
                throw RestoreError("database \(database) has encoding \(target) but the archive's binary COPY units are in \(manifest.database.encoding), which binary COPY does not convert; nothing was changed. Restore into a database created WITH ENCODING '\(manifest.database.encoding)', or take the backup with --copy-format text.")
            }
        }

        /// One restore per database at a time (a session advisory lock held by the leader).
        func lock(_ database: String) throws {
            let key = "pgvault-restore:" + database
            guard try leader.query("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1))", [key]).scalar == "t" else {
                throw RestoreError("another pgvault restore into database \(database) is running; wait for it to finish")
            }
        }

        /// Full restore: the target must be empty (or --clean); then, in one
        /// transaction: the drops, the journal, the pre-data schema.
        func applyPreData(database: String) throws -> [String] {
            guard let schema = manifest.schema else { return [] }
            let text = try Self.readMember(options.archivePath, schema.preData)
            let script = try SchemaScript.parse(text).filtered(noOwner: options.noOwner, noPrivileges: options.noPrivileges)
            var drops: [(sql: String, object: String)] = []
            if options.clean {
                let post = try SchemaScript.parse(try Self.readMember(options.archivePath, schema.postData))
                drops = post.dropStatements() + script.dropStatements()
            }
            if !options.clean {
                let (objects, count) = try RestoreTarget.userObjects(leader)
                if count > 0 {
                    throw RestoreError("database \(database) is not empty: it holds \(count) object(s) (\(objects.joined(separator: ", "))\(count > objects.count ? ", ..." : "")). Restore into an empty database, pass --clean to drop what the archive holds first, or --data-only to load into the existing tables.")
                }
            }
            try Session.runPreamble(leader, script.preamble)
            log("applying the pre-data schema (\(script.objects.count) objects)\(drops.isEmpty ? "" : " after dropping \(drops.count) objects the archive holds")")
            try leader.transaction { conn in
                for d in drops {
                    do {
                        try conn.execute(d.sql)
                    } catch let error as PGError where error.sqlState == PGError.dependentObjectsStillExist {
                        // Part of an object the archive does not hold (an identity
                        // sequence of another table, an extension's function...).
                        throw RestoreError("--clean cannot drop \(d.object) in database \(database): \(error.message)\(error.detail.map { " (\($0))" } ?? ""); it belongs to an object the archive does not hold, and --clean drops only what the archive holds. Nothing was changed. Drop or rename that object yourself, or restore into an empty database.")
                    }
                }
                try RestoreJournal.create(conn, state: .init(archiveID: archiveID, archive: options.archive, fingerprint: options.fingerprint, startedAt: ""))
                for object in script.objects {
                    do {
                        try conn.execute(SchemaScript.sql(of: object))
                    } catch let error as PGError {
                        throw RestoreError("the pre-data schema failed at \(object.type) \(object.schema.map { "\($0)." } ?? "")\(object.name): \(error.message)\(error.detail.map { " (\($0))" } ?? ""). Nothing was changed.")
                    }
                }
                try RestoreJournal.recordStep(conn, "pre-data")
            }
            return drops.map(\.object)
        }

        /// Data-only: refuse tables that hold rows (unless --clean), then in one
        /// transaction create the journal, detach foreign keys and triggers,
        /// and (--clean) empty the destinations.
        func startDataOnly(plan: LoadPlan, created: [String]) throws {
            var seen = Set<String>()
            let destinations = plan.loads.compactMap { l -> (String, String)? in
                seen.insert(l.destination).inserted ? (l.schema, l.name) : nil
            }
            if !options.clean {
                let full = try RestoreTarget.nonEmpty(leader, destinations)
                if !full.isEmpty {
                    throw RestoreError("\(full.count) target table(s) already hold rows (\(full.prefix(8).joined(separator: ", "))\(full.count > 8 ? ", ..." : "")); loading would duplicate them. Pass --clean to empty them first, or narrow the restore with --table/--exclude-table.")
                }
            }
            let detach = destinations.isEmpty ? [] : try RestoreTarget.detachable(leader, destinations: destinations)
            try leader.transaction { conn in
                try RestoreJournal.create(conn, state: .init(archiveID: archiveID, archive: options.archive, fingerprint: options.fingerprint, startedAt: ""))
                for c in created { try RestoreJournal.recordStep(conn, "created:\(c)") }
                for d in detach {
                    try RestoreJournal.recordDetached(conn, d)
                    try conn.execute(d.detachSQL)
                }
                if options.clean && !destinations.isEmpty {
                    try conn.execute("TRUNCATE " + destinations.map { SQL.qualified($0.0, $0.1) }.joined(separator: ", "))
                }
            }
            let fks = detach.filter { $0.kind == .foreignKey }.count
            log("detached \(fks) foreign keys and disabled \(detach.count - fks) triggers for the load (journaled; put back at the end)")
            if options.clean { log("emptied \(destinations.count) target tables (--clean)") }
        }

        /// Sequences, rows in DEFAULT partitions, the end of the journal.
        func finish(plan: LoadPlan) throws -> Finished {
            var notes: [String] = []
            var sequences = 0
            for s in manifest.sequences {
                let name = SQL.qualified(s.schema, s.name)
                guard try leader.query("SELECT to_regclass($1) IS NOT NULL", [name]).scalar == "t" else {
                    notes.append("sequence \(s.schema).\(s.name) is not in the target; not set")
                    continue
                }
                if options.dataOnly {
                    // Only forward: a prepared target's sequence never moves back.
                    let current = try leader.query("SELECT last_value::text, is_called FROM \(name)").firstRow()
                    let have = try current.int64(0) + (current.bool(1) ? 1 : 0)
                    let want = (Int64(s.lastValue) ?? 0) + (s.isCalled ? 1 : 0)
                    if want <= have { continue }
                }
                try leader.query("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::boolean)", [name, s.lastValue, s.isCalled ? "t" : "f"])
                sequences += 1
            }

            let rowsInDefault = try RestoreJournal.rowsInDefault(leader).filter { $0.value > 0 }
            for (partition, rows) in rowsInDefault.sorted(by: { $0.key < $1.key }) {
                log("\(rows) rows of regular archived partitions were routed into the DEFAULT partition \(partition)")
            }
            let target = try Catalog.relations(leader).map(\.table)
            try RestoreJournal.drop(leader)
            var seen = Set<String>()
            let roots = plan.loads.compactMap { l -> String? in
                var t = target.first { $0.qualifiedName == l.destination }
                while let c = t, let ps = c.parentSchema, let pn = c.parentName, let p = target.first(where: { $0.schema == ps && $0.name == pn }) { t = p }
                guard let root = t, seen.insert(root.qualifiedName).inserted else { return nil }
                return SQL.qualified(root.schema, root.name)
            }
            return Finished(sequences: sequences, rowsInDefault: rowsInDefault, analyzeTables: roots, notes: notes)
        }

        static func readMember(_ archive: String, _ member: Manifest.Member) throws -> String {
            let source = try Archive.open(archive)
            var bytes: [UInt8] = []
            try Archive.streamMember(member.member, expectedBytes: member.bytes, sha256: member.sha256, from: source,
                                     maxOutput: 1 << 30) { bytes.append(contentsOf: $0) }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw ArchiveFormatError("member \(member.member) is not valid UTF-8 text")
            }
            return text
        }
    }
}

// MARK: - Sessions and workers

enum Session {
    /// Settings for restore connections: the backup's COPY settings, no
    /// timeouts, asynchronous commit (a unit's data and its journal entry
    /// commit together, so a lost commit loses both), memory and parallel
    /// workers for index builds.
    static func prepare(_ conn: PGConnection, _ options: RestoreOptions) throws {
        try CopySession.apply(conn)
        try conn.execute("""
            SET synchronous_commit = off; SET statement_timeout = 0; SET lock_timeout = 0; \
            SET idle_in_transaction_session_timeout = 0; \
            SET maintenance_work_mem = \(SQL.literal(options.maintenanceWorkMem)); \
            SET max_parallel_maintenance_workers = \(max(0, options.maintenanceWorkers))
            """)
    }

    /// pg_dump's preamble, one statement at a time; a setting this server
    /// does not know (an older server given a newer pg_dump's
    /// `SET transaction_timeout = 0`) is skipped.
    static func runPreamble(_ conn: PGConnection, _ statements: [String]) throws {
        for statement in statements {
            do {
                try conn.execute(statement)
            } catch let error as PGError where error.sqlState == PGError.undefinedObject && statement.hasPrefix("SET ") {
                continue
            }
        }
    }
}

/// Hands out items to workers, in order; stops after a failure.
final class RestoreQueue<Item: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private let items: [Item]
    private var index = 0
    private var stopped = false

    init(_ items: [Item]) { self.items = items }

    func next() -> Item? {
        lock.withLock {
            guard !stopped, index < items.count else { return nil }
            defer { index += 1 }
            return items[index]
        }
    }

    func stop() { lock.withLock { stopped = true } }
}

enum Workers {
    /// Runs `body` for each item, in order, over up to `jobs` connections, each
    /// on a thread of its own. The first error stops handing out items,
    /// cancels the statements running on the other connections, and is rethrown.
    static func run<Item: Sendable>(
        _ items: [Item], jobs: Int, conninfo: String, name: String,
        setup: @escaping @Sendable (PGConnection) throws -> Void,
        body: @escaping @Sendable (PGConnection, Item) throws -> Void
    ) async throws {
        guard !items.isEmpty else { return }
        let queue = RestoreQueue(items)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<max(1, min(jobs, items.count)) {
                group.addTask {
                    let conn = try await Blocking.run("pgvault-restore-connect") {
                        try PGConnection(conninfo: conninfo, applicationName: "pgvault restore \(name) \(w + 1)")
                    }
                    try await Blocking.run("pgvault-restore-\(name)-\(w + 1)", on: conn) { conn in
                        try setup(conn)
                        while let item = queue.next() {
                            try Cancellation.check()
                            try body(conn, item)
                        }
                    }
                }
            }
            do {
                for try await _ in group {}
            } catch {
                queue.stop()
                group.cancelAll()
                throw error
            }
        }
    }

    /// Runs `body` in a transaction, again (up to 5 times) if the server broke
    /// a deadlock by cancelling it; parallel DDL on related tables can deadlock.
    static func retryingDeadlocks(_ conn: PGConnection, _ body: (PGConnection) throws -> Void) throws {
        var attempt = 0
        while true {
            do {
                try conn.transaction { try body($0) }
                return
            } catch let error as PGError where error.sqlState == PGError.deadlockDetected && attempt < 5 {
                attempt += 1
                usleep(useconds_t(100_000 * attempt))
            }
        }
    }
}

/// Messages gathered by workers for the summary.
final class Notes: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

extension String {
    /// pg_dump's `ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ...;` with
    /// NOT VALID added, or nil if it is not one such statement.
    var notValidForeignKey: String? {
        guard hasSuffix(";"), contains(" FOREIGN KEY "), !contains("NOT VALID"),
              filter({ $0 == ";" }).count == 1 else { return nil }
        return String(dropLast()) + " NOT VALID;"
    }
}

/// Totals shared by the workers, read by the progress reporter.
final class LoadMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var state: RestoreProgress
    private let started = Date()

    init(total: Int, bytesTotal: Int64, skipped: [String: Int64]) {
        state = RestoreProgress(phase: "load", unitsDone: 0, unitsTotal: total - skipped.count, rows: 0, bytes: 0,
                                bytesTotal: bytesTotal, elapsed: 0)
    }

    func setTotalBytes(_ bytes: Int64) { lock.withLock { state.bytesTotal = bytes } }
    func add(bytes: Int) { lock.withLock { state.bytes += Int64(bytes) } }
    func finishUnit(rows: Int64) {
        lock.withLock {
            state.unitsDone += 1
            state.rows += rows
        }
    }
    func beginPhase(_ phase: String, total: Int = 0) {
        lock.withLock {
            state.phase = phase
            state.phaseDone = 0
            state.phaseTotal = total
        }
    }
    func stepDone() { lock.withLock { state.phaseDone += 1 } }

    func snapshot() -> RestoreProgress {
        lock.withLock {
            var s = state
            s.elapsed = Date().timeIntervalSince(started)
            return s
        }
    }
}

// MARK: - Loading units

enum UnitLoader {
    /// Test hook, for tests only: milliseconds to wait inside each unit's
    /// transaction after its COPY, so a test can kill a restore mid-way.
    static let testDelayVariable = "PGVAULT_TEST_UNIT_DELAY_MS"

    /// `encoding`: the archive's (its COPY text is in the source database's
    /// encoding; the server converts if the target's differs).
    static func load(_ loads: [LoadPlan.Load], options: RestoreOptions, encoding: String, monitor: LoadMonitor) async throws {
        monitor.setTotalBytes(loads.reduce(0) { $0 + $1.unit.rawBytes })
        let delay = Int(ProcessInfo.processInfo.environment[testDelayVariable] ?? "") ?? 0
        let sources = SourcePool(path: options.archivePath)
        try await Workers.run(loads, jobs: options.jobs, conninfo: options.conninfo, name: "load",
                              setup: { conn in
                                  try Session.prepare(conn, options)
                                  try conn.execute("SET client_encoding = \(SQL.literal(encoding))")
                              }) { conn, load in
            let source = try sources.source()
            let rows = try loadUnit(load, conn: conn, source: source, delayMilliseconds: delay, monitor: monitor)
            monitor.finishUnit(rows: rows)
        }
    }

    /// BEGIN; [TRUNCATE]; COPY ... FROM STDIN [FREEZE] fed from the member
    /// (its SHA-256 checked as it streams); journal entry; COMMIT.
    static func loadUnit(
        _ load: LoadPlan.Load, conn: PGConnection, source: ArchiveSource, delayMilliseconds: Int, monitor: LoadMonitor
    ) throws -> Int64 {
        let table = SQL.qualified(load.schema, load.name)
        let columns = load.unit.columns.map(SQL.ident).joined(separator: ", ")
        let what = "unit \(load.unit.id) (\(load.unit.member), \(load.archived.qualifiedName) → \(load.destination))"
        do {
            return try conn.transaction { conn in
                if load.freeze { try conn.execute("TRUNCATE ONLY \(table)") }
                let rows = try conn.copyIn("COPY \(table) (\(columns)) FROM STDIN\(load.unit.format.options(load.freeze ? ["FREEZE"] : []))") { writer in
                    try Archive.streamUnit(load.unit, from: source) { chunk in
                        try writer.write(chunk)
                        monitor.add(bytes: chunk.count)
                    }
                }
                guard rows == load.unit.rows else {
                    throw RestoreError("\(what): COPY loaded \(rows) rows but the manifest says \(load.unit.rows); rolled back")
                }
                // Rows that fit no partition of the target: they are this
                // transaction's rows in a DEFAULT partition.
                for d in load.defaultPartitions {
                    let n = try conn.query("SELECT count(*) FROM ONLY \(d.sql) WHERE xmin = pg_catalog.pg_current_xact_id()::xid").firstRow().int64(0)
                    if n > 0 { try RestoreJournal.recordInDefault(conn, load.unit, partition: d.qualified, rows: n) }
                }
                if delayMilliseconds > 0 { usleep(useconds_t(delayMilliseconds * 1000)) }
                try RestoreJournal.recordUnit(conn, load.unit, destination: load.destination, rows: rows)
                return rows
            }
        } catch let error as ArchiveFormatError {
            throw RestoreError("\(error.description); \(what) was rolled back, nothing of it was loaded")
        } catch let error as PGError where error.kind == .query {
            var hint = ""
            if error.sqlState == PGError.checkViolation && load.routed {
                hint = " (a row fits no partition of \(load.destination): create the partition, or a DEFAULT partition)"
            }
            throw RestoreError("\(what) failed and was rolled back: \(error)\(hint)")
        }
    }
}

/// One archive reader per worker thread (a source is not shared between threads).
final class SourcePool: @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    private var byThread: [ObjectIdentifier: ArchiveSource] = [:]

    init(path: String) { self.path = path }

    func source() throws -> ArchiveSource {
        let key = ObjectIdentifier(Thread.current)
        if let s = lock.withLock({ byThread[key] }) { return s }
        let s = try Archive.open(path)
        lock.withLock { byThread[key] = s }
        return s
    }
}

// MARK: - After loading

enum PostData {
    /// Applies the post-data schema in phases; returns the statements run.
    static func run(
        schema: Manifest.Schema, manifest: Manifest, options: RestoreOptions, monitor: LoadMonitor, notes: Notes,
        log: @escaping @Sendable (String) -> Void
    ) async throws -> Int {
        let text = try await Blocking.run("pgvault-restore-post-data") {
            try RestoreEngine.Context.readMember(options.archivePath, schema.postData)
        }
        let script = try SchemaScript.parse(text).filtered(noOwner: options.noOwner, noPrivileges: options.noPrivileges)
        let done = try await Blocking.run("pgvault-restore-steps") {
            try RestoreJournal.steps(try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore"))
        }
        // Sizes by table as pg_dump names them, to build the largest first.
        var sizes: [String: Int64] = [:]
        for u in manifest.units { sizes[SchemaScript.dumpName(u.schema, u.table), default: 0] += u.rawBytes }
        var count = 0
        for phase in SchemaScript.Phase.allCases {
            var objects = script.objects.filter { SchemaScript.Phase.of($0) == phase && !done.contains("post-data:\($0.index)") }
            guard !objects.isEmpty else { continue }
            if phase.parallel {
                objects.sort { (sizes[SchemaScript.tableOf($0) ?? ""] ?? 0) > (sizes[SchemaScript.tableOf($1) ?? ""] ?? 0) }
            }
            let phaseStart = Date()
            monitor.beginPhase("post-data: \(phase.label)", total: objects.count)
            try await Workers.run(objects, jobs: phase.parallel ? options.jobs : 1, conninfo: options.conninfo, name: "post-data",
                                  setup: { conn in
                                      try Session.prepare(conn, options)
                                      try Session.runPreamble(conn, script.preamble)
                                  }) { conn, object in
                do {
                    do {
                        try Workers.retryingDeadlocks(conn) { conn in
                            try conn.execute(SchemaScript.sql(of: object))
                            try RestoreJournal.recordStep(conn, "post-data:\(object.index)")
                        }
                    } catch let error as PGError where error.sqlState == PGError.foreignKeyViolation && phase == .foreignKeys {
                        // Rows reference rows the selection left out: keep the
                        // constraint for new rows, unvalidated, and say so.
                        guard var notValid = object.sql.notValidForeignKey else { throw error }
                        notValid = SchemaScript.sql(of: SchemaScript.Object(
                            index: object.index, name: object.name, type: object.type, schema: object.schema, sql: notValid,
                            tablespace: object.tablespace, accessMethod: object.accessMethod))
                        try Workers.retryingDeadlocks(conn) { conn in
                            try conn.execute(notValid)
                            try RestoreJournal.recordStep(conn, "post-data:\(object.index)")
                        }
                        let note = "foreign key \(object.name) (\(object.schema ?? "")) added NOT VALID: \(error.message); some rows reference rows that were not restored"
                        notes.add(note)
                        log(note)
                    }
                    monitor.stepDone()
                } catch let error as PGError {
                    throw RestoreError("post-data \(object.type) \(object.schema.map { "\($0)." } ?? "")\(object.name) failed: \(error). The data is loaded; fix the cause and rerun with --resume to finish the schema.")
                }
            }
            count += objects.count
            log("post-data: \(objects.count) \(phase.label) in \(String(format: "%.1f", Date().timeIntervalSince(phaseStart))) s\(phase.parallel ? " over \(max(1, min(options.jobs, objects.count))) connections" : "")")
        }
        return count
    }
}

enum Reattach {
    /// Data-only: adds back the foreign keys (validating them, in parallel)
    /// and re-enables the triggers the load detached.
    static func run(
        options: RestoreOptions, leader: PGConnection, monitor: LoadMonitor, notes: Notes, log: @escaping @Sendable (String) -> Void
    ) async throws {
        let detached = try await Blocking.run("pgvault-restore-detached", on: leader) { try RestoreJournal.detached($0) }
        let fks = detached.filter { $0.kind == .foreignKey }
        let triggers = detached.filter { $0.kind == .trigger }.sorted { ($0.inherited ? 1 : 0, $0.position) < ($1.inherited ? 1 : 0, $1.position) }
        if !fks.isEmpty { log("adding back and validating \(fks.count) foreign keys") }
        monitor.beginPhase("foreign keys", total: fks.count)
        try await Workers.run(fks, jobs: options.jobs, conninfo: options.conninfo, name: "foreign-keys",
                              setup: { try Session.prepare($0, options) }) { conn, d in
            let table = SQL.qualified(d.schema, d.table)
            do {
                do {
                    try Workers.retryingDeadlocks(conn) { conn in
                        try conn.execute(d.restoreSQL)
                        try RestoreJournal.removeDetached(conn, d)
                    }
                } catch let error as PGError where error.sqlState == PGError.foreignKeyViolation {
                    // Rows reference rows the selection left out: keep the
                    // constraint for new rows, unvalidated, and say so.
                    try Workers.retryingDeadlocks(conn) { conn in
                        try conn.execute(d.restoreSQL + " NOT VALID")
                        try RestoreJournal.removeDetached(conn, d)
                    }
                    let note = "foreign key \(d.name) on \(d.schema).\(d.table) added back NOT VALID: \(error.message); some rows reference rows that were not restored (restore them, then ALTER TABLE \(table) VALIDATE CONSTRAINT \(SQL.ident(d.name)))"
                    notes.add(note)
                    log(note)
                    monitor.stepDone()
                    return
                }
                if d.wasNotValid {
                    notes.add("foreign key \(d.name) on \(d.schema).\(d.table), NOT VALID before, is now validated")
                }
                monitor.stepDone()
            } catch let error as PGError {
                throw RestoreError("adding back foreign key \(d.name) on \(d.schema).\(d.table) failed: \(error). The data is loaded; the constraint is recorded in \(RestoreJournal.schema).detached. Fix the rows and rerun with --resume.")
            }
        }
        try await Blocking.run("pgvault-restore-triggers", on: leader) { conn in
            for d in triggers {
                try conn.transaction { conn in
                    try conn.execute(d.restoreSQL)
                    try RestoreJournal.removeDetached(conn, d)
                }
            }
        }
    }
}
