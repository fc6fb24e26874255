import Foundation
import PGClient
import Support

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
            // The archive is named by its manifest's bytes (unique to one
            // backup: the snapshot, the times, every member's checksum).
            try Archive.manifestAndDigest(of: try options.source.open())
        }
        if !options.dataOnly && manifest.schema == nil {
            throw PGVaultError.archive("\(options.archiveName) holds no schema (it is a --data-only backup): restore it into a prepared database with --data-only")
        }
        let selected = try LoadPlan.select(
            manifest, tables: options.tables, exclude: options.excludeTables, window: options.window,
            includeDefault: options.includeDefaultPartitions)
        // Every member this restore reads is there, whole, before the target changes.
        try await Blocking.run("pgvault-restore-members") {
            do {
                try Archive.checkMembers(
                    neededMembers(manifest, selected: selected, dataOnly: options.dataOnly),
                    in: try options.source.open(), label: options.archiveName)
            } catch let error as PGVaultError where error.kind == .archive {
                throw PGVaultError.archive(error.description + " Nothing was changed in the target database.", wholeArchive: error.wholeArchive)
            }
        }

        // A full restore's post-data script is read and spooled before the
        // target changes: a damaged member, or no room for it in $TMPDIR,
        // stops the restore with nothing done.
        var script: PostDataScript? = if !options.dataOnly, let schema = manifest.schema {
            try await Blocking.run("pgvault-restore-post-data") { try PostDataScript.read(schema.postData, options: options) }
        } else {
            nil
        }

        let fetchSeconds = Date().timeIntervalSince(started)
        let schemaStart = Date()
        let leader = try await Blocking.run("pgvault-restore-connect") {
            try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore")
        }
        let context = Context(options: options, manifest: manifest, archiveID: archiveID, selected: selected, leader: leader, log: log)
        let prepared = try await Blocking.run("pgvault-restore-prepare", on: leader) { [context] _ in
            try context.prepare()
        }
        let schemaSeconds = Date().timeIntervalSince(schemaStart)
        // The manifest's JSON and the pre-data script are parsed and gone
        // (malloc_trim walks the heap: a thread of its own, as C calls get).
        try await Blocking.run("pgvault-restore-heap") { Heap.releaseFreePages() }

        // Data.
        let monitor = Locked(LoadProgress(
            total: prepared.plan.loads.count, bytesTotal: prepared.plan.loads.reduce(0) { $0 + $1.unit.rawBytes },
            skipped: prepared.finished))
        let reporter = options.progress.map { callback in
            Task.detached {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if Task.isCancelled { break }
                    callback(monitor.value.snapshot)
                }
            }
        }
        defer { reporter?.cancel() }
        var loadSeconds = 0.0, postDataSeconds = 0.0
        var postDataStatements = 0
        let constraintNotes = Locked<[String]>([])
        let schemaEnd = Date().timeIntervalSince(started)
        let timeline: RestoreTimeline?
        if let path = options.timeline {
            timeline = try await Blocking.run("pgvault-restore-timeline") { try RestoreTimeline(path: path) }
        } else {
            timeline = nil
        }
        try timeline?.append(RestoreTimeline.Entry(
            id: "schema", kind: "schema", relation: nil, deps: [], start: schemaStart.timeIntervalSince(started),
            end: schemaEnd, worker: 0, bytes: 0))
        var lastIDs = ["schema"]
        var summaryBound: RestoreTimeline.Bound?
        var notValidInArchive = Set<String>()
        var scheduledSeconds: Double?
        /// `--verify full` of a full restore: the tables' read-backs, steps of the graph.
        var readBacks: (checks: [DigestCheck], findings: [VerifyFinding])?
        if var script = script.take() {
            // Data and post-data, each step as soon as what it needs is done.
            let doneSteps = try await Blocking.run("pgvault-restore-steps", on: leader) { try RestoreJournal.steps($0) }
            notValidInArchive = script.notValid
            if options.verify && options.verification == .full {
                // Each table is read back as soon as its own work is done.
                let restored = Set(prepared.plan.loads.map(\.unit.id))
                readBacks = try await Blocking.run("pgvault-restore-verify-plan", on: leader) { conn in
                    RestorePlan.make(
                        tables: manifest.tables, units: manifest.units, target: try Catalog.relations(conn).map(\.table),
                        selected: restored.count == manifest.units.count ? nil : restored)
                }
            }
            var graph = RestoreGraph.build(
                loads: prepared.plan.loads, tables: manifest.tables, script: &script,
                finishedUnits: prepared.finished, finishedSteps: doneSteps, planOrder: options.order == .newestFirst,
                checks: readBacks?.checks ?? [])
            // The steps hold what they run (an object's place in the spool):
            // the script's facts (one entry per partition's index, key and
            // attachment) and names go.
            script.dropFacts()
            try await Blocking.run("pgvault-restore-heap") { Heap.releaseFreePages() }
            if options.resume {
                log("resuming: \(graph.steps.reduce(0) { $0 + ($1.done ? 1 : 0) }) of \(graph.steps.count) steps were done before")
            }
            let outcome = try await StepScheduler.run(
                graph, options: options, encoding: manifest.database.encoding, preamble: script.preamble, origin: started,
                monitor: monitor, notes: constraintNotes, log: log)
            readBacks?.findings += outcome.findings
            let loadsEnd = zip(graph.steps, outcome.timings).compactMap { $0.kind == .load ? $1?.end : nil }.max() ?? outcome.start
            loadSeconds = loadsEnd - outcome.start
            postDataSeconds = outcome.end - loadsEnd
            postDataStatements = graph.steps.reduce(0) { $0 + ($1.kind != .load && !$1.done ? 1 : 0) }
            // A step done by an earlier run took no time in this one.
            summaryBound = RestoreTimeline.bound(
                durations: outcome.timings.map { $0.map { $0.end - $0.start } ?? 0 }, deps: { graph.deps(of: $0).map(Int.init) },
                locks: graph.boundLocks(of:), relationName: { graph.names[$0] }, jobs: max(1, options.jobs))
            scheduledSeconds = outcome.end - outcome.start
            if let timeline {
                lastIDs = try await Blocking.run("pgvault-restore-timeline") { [graph] in
                    try RestoreEngine.writeTimeline(graph, outcome, doneAt: schemaEnd, to: timeline)
                }
            }
            // The steps are done with.
            graph = RestoreGraph()
        } else {
            let pending = prepared.plan.loads.filter { prepared.finished[$0.unit.id] == nil }
            if pending.count < prepared.plan.loads.count {
                log("resuming: \(prepared.plan.loads.count - pending.count) of \(prepared.plan.loads.count) units were loaded before")
            }
            log("loading \(pending.count) units over \(max(1, min(options.jobs, pending.count))) connections")
            let loadStart = Date()
            try await UnitLoader.load(pending, options: options, encoding: manifest.database.encoding, monitor: monitor)
            loadSeconds = Date().timeIntervalSince(loadStart)
            options.progress?(monitor.value.snapshot)
            // The target's own constraints back.
            let postStart = Date()
            try await Reattach.run(options: options, leader: leader, monitor: monitor, notes: constraintNotes, log: log)
            postDataSeconds = Date().timeIntervalSince(postStart)
        }
        let statisticsStart = Date()
        if !options.dataOnly, options.statistics, let statistics = manifest.schema?.statistics {
            let (applied, note) = try await Blocking.run("pgvault-restore-statistics") {
                try RestoreStatistics.apply(statistics, options: options)
            }
            if let note { constraintNotes.withLock { $0.append(note) } }
            if applied > 0 { log("applied the optimizer statistics of \(applied) tables and indexes") }
            try timeline?.append(.init(
                id: "statistics", kind: "statistics", relation: nil, deps: lastIDs, start: statisticsStart.timeIntervalSince(started),
                end: Date().timeIntervalSince(started), worker: 0, bytes: 0))
            lastIDs = ["statistics"]
        }
        postDataSeconds += Date().timeIntervalSince(statisticsStart)

        var verifyOK: Bool?
        var verifyFailures: [String] = []
        var verifySeconds = 0.0
        if options.verify && options.verification == .standard {
            // What the load proved, read from the journal before it is dropped.
            let proofStart = Date()
            let proof = try await Blocking.run("pgvault-restore-proof", on: leader) { [notValidInArchive] in
                try RestoreProof.standard($0, plan: prepared.plan, notValidInArchive: notValidInArchive)
            }
            verifyOK = proof.failures.isEmpty
            verifyFailures = proof.failures
            log(proof.summary)
            verifySeconds = Date().timeIntervalSince(proofStart)
            try timeline?.append(.init(
                id: "verify", kind: "verify", relation: nil, deps: lastIDs, start: proofStart.timeIntervalSince(started),
                end: Date().timeIntervalSince(started), worker: 0, bytes: 0))
            lastIDs = ["verify"]
        }

        // Nothing is marked finished once the run is cancelled: --resume goes on from here.
        try Task.checkCancellation()
        let finishStart = Date()
        let finish = try await Blocking.run("pgvault-restore-finish", on: leader) { [context] _ in
            try context.finish(plan: prepared.plan)
        }
        try timeline?.append(.init(
            id: "sequences", kind: "sequence", relation: nil, deps: lastIDs, start: finishStart.timeIntervalSince(started),
            end: Date().timeIntervalSince(started), worker: 0, bytes: 0))
        lastIDs = ["sequences"]
        if options.analyze {
            log("analyzing \(finish.analyzeTables.count) tables")
            monitor.withLock { $0.beginPhase("analyze", total: finish.analyzeTables.count) }
            let after = lastIDs
            let analyzed = try await WorkerPool.run(
                finish.analyzeTables, jobs: options.jobs, name: "pgvault restore analyze",
                makeWorker: { context in
                    let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore analyze \(context.number)")
                    context.cancels(conn)
                    try Session.prepare(conn, options)
                    return (conn: conn, number: context.number)
                }
            ) { worker, table in
                let start = Date().timeIntervalSince(started)
                try worker.conn.execute("ANALYZE \(table)")
                monitor.withLock { $0.stepDone() }
                return RestoreTimeline.Entry(
                    id: "analyze:\(table)", kind: "analyze", relation: table, deps: after, start: start,
                    end: Date().timeIntervalSince(started), worker: worker.number, bytes: 0)
            }
            for entry in analyzed { try timeline?.append(entry) }
            lastIDs = analyzed.map(\.id)
        }

        let verifyStart = Date()
        if options.verify && options.verification == .full {
            monitor.withLock { $0.beginPhase("verify") }
            let report: VerifyReport
            if let readBacks {
                log("checking the foreign keys; \(readBacks.checks.count) tables were read back as they were restored")
                report = try await Verifier.finishRestored(digests: readBacks.findings, conninfo: options.conninfo, jobs: options.jobs)
            } else {
                log("verifying the restored tables against the archive")
                let restored = Set(prepared.plan.loads.map(\.unit.id))
                report = try await Verifier.checkRestored(
                    archive: options.source, conninfo: options.conninfo, jobs: options.jobs,
                    units: restored.count == manifest.units.count ? nil : restored, extraRelations: [],
                    trustValidatedForeignKeys: !options.dataOnly, progress: nil)
            }
            verifyOK = report.ok
            verifyFailures = report.failures.map { "\($0.check) \($0.object)\($0.constraint.map { " \($0)" } ?? ""): \($0.detail)" }
            log(report.summary)
            try timeline?.append(.init(
                id: "verify", kind: "verify", relation: nil, deps: lastIDs, start: verifyStart.timeIntervalSince(started),
                end: Date().timeIntervalSince(started), worker: 0, bytes: 0))
            verifySeconds = Date().timeIntervalSince(verifyStart)
        }
        if let timeline, let path = options.timeline {
            try await Blocking.run("pgvault-restore-timeline") { try timeline.finish() }
            log("wrote the statement timeline (\(timeline.count) steps) to \(path)")
        }

        let totals = monitor.value.progress
        var summary = RestoreSummary(
            status: verifyOK == false ? "verify-failed" : "complete", archive: options.archiveName, database: prepared.database,
            mode: options.dataOnly ? "data-only" : "full", resumed: options.resume,
            units: totals.unitsDone, unitsSkipped: prepared.finished.count, rows: totals.rows, bytes: totals.bytes,
            seconds: Date().timeIntervalSince(started), loadSeconds: loadSeconds, postDataSeconds: postDataSeconds,
            createdPartitions: prepared.created, routedUnits: prepared.plan.loads.filter(\.routed).count,
            rowsInDefaultPartitions: finish.rowsInDefault, postDataStatements: postDataStatements,
            sequences: finish.sequences, dropped: prepared.dropped,
            verify: verifyOK.map { $0 ? "ok" : "failed" } ?? "skipped", verifyOK: verifyOK, verifyFailures: verifyFailures,
            notes: prepared.plan.notes + constraintNotes.value + finish.notes)
        summary.fetchSeconds = fetchSeconds
        summary.schemaSeconds = schemaSeconds
        summary.verifySeconds = verifySeconds
        summary.scheduledSeconds = scheduledSeconds
        summary.verifyLevel = options.verify ? options.verification.rawValue : nil
        summary.bound = summaryBound
        return summary
    }
}
