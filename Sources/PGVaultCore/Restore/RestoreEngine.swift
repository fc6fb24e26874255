import CryptoDigest
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
            let source = try options.source.open()
            let manifest = try Archive.manifest(of: source)
            return (manifest, try SHA2.hex(.sha256, of: manifest.encoded()))
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
        let pending = prepared.plan.loads.filter { prepared.finished[$0.unit.id] == nil }
        if pending.count < prepared.plan.loads.count {
            log("resuming: \(prepared.plan.loads.count - pending.count) of \(prepared.plan.loads.count) units were loaded before")
        }
        log("loading \(pending.count) units over \(max(1, min(options.jobs, pending.count))) connections")
        let loadStart = Date()
        try await UnitLoader.load(pending, options: options, encoding: manifest.database.encoding, monitor: monitor)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        options.progress?(monitor.value.snapshot)

        // Schema after data, or the target's own constraints back.
        let postStart = Date()
        var postDataStatements = 0
        let constraintNotes = Locked<[String]>([])
        if !options.dataOnly, let schema = manifest.schema {
            postDataStatements = try await PostData.run(
                schema: schema, manifest: manifest, options: options, monitor: monitor, notes: constraintNotes, log: log)
        } else {
            try await Reattach.run(options: options, leader: leader, monitor: monitor, notes: constraintNotes, log: log)
        }
        if !options.dataOnly, options.statistics, let statistics = manifest.schema?.statistics {
            let (applied, note) = try await Blocking.run("pgvault-restore-statistics") {
                try RestoreStatistics.apply(statistics, options: options)
            }
            if let note { constraintNotes.withLock { $0.append(note) } }
            if applied > 0 { log("applied the optimizer statistics of \(applied) tables and indexes") }
        }
        let postDataSeconds = Date().timeIntervalSince(postStart)

        // Nothing is marked finished once the run is cancelled: --resume goes on from here.
        try Task.checkCancellation()
        let finish = try await Blocking.run("pgvault-restore-finish", on: leader) { [context] _ in
            try context.finish(plan: prepared.plan)
        }
        if options.analyze {
            log("analyzing \(finish.analyzeTables.count) tables")
            monitor.withLock { $0.beginPhase("analyze", total: finish.analyzeTables.count) }
            _ = try await WorkerPool.overConnections(
                finish.analyzeTables, jobs: options.jobs, conninfo: options.conninfo, name: "pgvault restore analyze",
                setup: { try Session.prepare($0, options) }
            ) { conn, table in
                try conn.execute("ANALYZE \(table)")
                monitor.withLock { $0.stepDone() }
            }
        }

        var verifyOK: Bool?
        var verifyFailures: [String] = []
        let verifyStart = Date()
        if options.verify {
            monitor.withLock { $0.beginPhase("verify") }
            log("verifying the restored tables against the archive")
            let restored = Set(prepared.plan.loads.map(\.unit.id))
            let report = try await Verifier.checkRestored(
                archive: options.source, conninfo: options.conninfo, jobs: options.jobs,
                units: restored.count == manifest.units.count ? nil : restored, extraRelations: [],
                trustValidatedForeignKeys: !options.dataOnly, progress: nil)
            verifyOK = report.ok
            verifyFailures = report.failures.map { "\($0.check) \($0.object)\($0.constraint.map { " \($0)" } ?? ""): \($0.detail)" }
            log(report.summary)
        }

        let verifySeconds = options.verify ? Date().timeIntervalSince(verifyStart) : 0
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
        return summary
    }
}
