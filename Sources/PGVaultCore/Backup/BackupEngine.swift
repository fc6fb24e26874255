import Foundation
import PGClient
import Support

/// A consistent, parallel backup:
///
/// 1. The leader opens a REPEATABLE READ transaction and exports its
///    snapshot. pg_dump starts from here (3) when every table is backed up
///    (after the catalog when only some are). The leader reads the catalog in
///    that snapshot, then locks every selected table ACCESS SHARE (waiting at
///    most --lock-wait-timeout) and checks no table changed between its
///    snapshot and its lock.
/// 2. `--jobs` workers, each on its own thread and connection, import that
///    snapshot and stream units (a table, a partition, or a ctid range of a big
///    one), largest first, through `COPY ... TO STDOUT` → row digest → zstd →
///    SHA-256 → a member object (`ArchiveDestination`: the store's writer,
///    committed whole at the unit's end; zstd on a thread of the unit's own from its
///    second buffer on, see `UnitWriter`). Memory per worker: one row, two
///    512 KiB buffers and zstd's window.
/// 3. pg_dump, given the same snapshot, dumps the schema (custom format), and
///    pg_restore writes its pre-data and post-data scripts. It waits on a
///    table's lock no longer than the leader may.
/// 4. manifest.json is written last; everything is fsynced; the folder (or the
///    tar made from it) is renamed into place. Until then nothing exists under
///    the final name.
public enum BackupEngine {
    public static func run(_ requested: BackupOptions) async throws -> BackupSummary {
        let started = Date()
        // Where members go while the backup runs: for a directory archive, a
        // hidden sibling that is renamed at the end; for a file, a spool folder.
        // Every path is checked before connecting. An --output gets its staging
        // folder now; a repository's name needs the database's name, which the
        // leader reports, so it is claimed once the leader is prepared.
        var early: (staging: String, output: String)?
        // A format-2 repository (one `repo init` made): chunks go into its
        // packs; a local spool folder holds only pg_dump's schema files.
        var chunks: RepositoryBackupWriter?
        if let repository = requested.repository {
            chunks = try await Blocking.run("pgvault-backup-setup") { try RepositoryBackupWriter.start(requested, repository: repository) }
            if let chunks {
                early = (chunks.spool, repository)
            } else {
                _ = try await Blocking.run("pgvault-backup-setup") { try Repository(path: repository) }
            }
        } else {
            early = try await Blocking.run("pgvault-backup-setup") { try stagingFolder(for: requested) }
        }
        var stagingPath = early?.staging
        var published = false
        if let stagingPath { PartialOutputs.register(stagingPath) }
        defer {
            if let stagingPath {
                if !published || chunks != nil { Files.removeTree(stagingPath) }
                PartialOutputs.forget(stagingPath)
            }
            if !published { chunks?.abort() }
        }

        let leader = try await Blocking.run("pgvault-backup-leader") {
            try PGConnection(conninfo: requested.conninfo, applicationName: "pgvault backup")
        }
        let begun = try await Blocking.run("pgvault-backup-leader", on: leader) { try begin($0, requested) }
        var named = requested
        if let repository = requested.repository, chunks == nil {
            named.output = Repository(checked: repository).newBackupPath(database: begun.database, at: started, form: requested.form)
            named.uniqueName = true
            let claimed = named
            early = try await Blocking.run("pgvault-backup-setup") { try stagingFolder(for: claimed) }
            stagingPath = early?.staging
            if let stagingPath { PartialOutputs.register(stagingPath) }
        }
        guard case let (staging, output)? = early else { throw PGVaultError.io("no staging folder was made") }
        named.output = output
        let options = named
        // The staging folder is seen by nobody until manifest.json is in it:
        // its members are made durable all together just before that.
        let deferredSync = DeferredSync()
        let destination = chunks.map { ArchiveDestination(chunks: $0.session) }
            ?? ArchiveDestination(stagingFolder: staging, deferringSync: deferredSync)

        // The schema beside the leader's catalog, its locks and the data:
        // pg_dump reads the catalog in the exported snapshot, and its result
        // is awaited below. A backup of the whole database starts it at once
        // (at thousands of partitions pg_dump's catalog read is the backup's
        // critical path); a selective one first learns which tables to name.
        let snapshot = begun.facts.snapshotID
        let serverMajor = leader.serverMajorVersion
        let selective = !options.tables.isEmpty || !options.excludeTables.isEmpty
        let catalogFirst = selective ? try await Blocking.run("pgvault-backup-leader", on: leader) { try readCatalog($0, begun, options) } : nil
        let dumpTables = catalogFirst.flatMap { Self.namedTables($0) }
        async let schemaMember = dumpSchema(options, serverMajor: serverMajor, serverVersion: begun.facts.server.version, snapshot: snapshot, tables: dumpTables, staging: staging, destination: destination)
        let snapshotPlan: Plan
        if let catalogFirst {
            snapshotPlan = catalogFirst
        } else {
            snapshotPlan = try await Blocking.run("pgvault-backup-leader", on: leader) { try readCatalog($0, begun, options) }
        }
        let plan = try await Blocking.run("pgvault-backup-leader", on: leader) { try lockAndCheck($0, snapshotPlan, options) }

        let units = options.schemaOnly ? [] : planUnits(plan.selected, splitBytes: options.splitBytes, binary: options.binaryCopy)
        let progress = Locked(BackupProgress(unitsTotal: units.count, estimatedBytes: units.reduce(0) { $0 + $1.estimatedBytes }))
        let reporter = options.progress.map { callback in
            Task.detached {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    var now = progress.value
                    now.elapsed = Date().timeIntervalSince(started)
                    callback(now)
                }
            }
        }
        defer { reporter?.cancel() }

        // Data and schema in parallel: workers stream units while pg_dump runs.
        let unchanged = chunks.map { UnchangedUnits(writer: $0, server: plan.facts.server, database: plan.database, reuse: options.reuseUnchanged) }
        let done = try await runWorkers(options, units: units, snapshot: snapshot, destination: destination, progress: progress, unchanged: unchanged)
        // The data members' fsyncs start now, beside pg_dump, which is still
        // dumping the schema when the tables are small and many; the flush
        // before the manifest then has only the schema's members left.
        let form = options.form
        async let dataSynced: Void = Blocking.run("pgvault-backup-sync") {
            if form == .directory { try deferredSync.flush() }
        }
        let schema = try await schemaMember
        try await dataSynced
        // The server's part can end before a signal is noticed by a worker
        // (compression, pg_dump and the writes run on after the COPYs):
        // nothing is committed or published once the run is cancelled.
        try Task.checkCancellation()
        let onStandby = plan.facts.standby != nil
        try await Blocking.run("pgvault-backup-leader", on: leader) { conn in
            do { try conn.execute("COMMIT") } catch let error as PGError where onStandby && (error.isConnectionFailure || error.isRecoveryConflict) {
                // The session that holds the snapshot and the tables' locks
                // was ended: the tables may have changed under the copies.
                throw PGVaultError.server(
                    "the standby ended the backup's leader session (it holds the snapshot and the tables' locks) before the backup finished, so the backup is not kept; the standby's log says why, usually a conflict with recovery: \(PGError.recoveryConflictAdvice)",
                    error)
            }
        }
        TestPause.here("backup: the server's part is done", variable: "PGVAULT_TEST_BACKUP_PAUSE_AFTER_SERVER")

        let tables = Self.countingRows(plan.selected.map(\.table), done)
        let facts = plan.facts
        var manifest = Manifest(
            startedAt: ISO8601.format(started), completedAt: ISO8601.format(Date()),
            server: facts.server,
            database: Manifest.Database(name: plan.database, encoding: facts.encoding, collate: facts.collate, ctype: facts.ctype),
            snapshot: Manifest.Snapshot(id: facts.snapshotID, time: facts.time, walLSN: facts.walLSN, walSegment: facts.walSegment, standby: facts.standby),
            migrations: plan.migrations.isEmpty ? nil : plan.migrations,
            copyFormat: Manifest.copyFormatSummary(done),
            copySettings: CopySession.asDictionary,
            compression: Manifest.Compression(level: Int(options.compressionLevel)),
            selection: Manifest.Selection(tables: options.tables, excludeTables: options.excludeTables, schemaOnly: options.schemaOnly, dataOnly: options.dataOnly),
            schema: schema, sequences: plan.sequences, tables: tables,
            units: done.sorted { $0.id < $1.id })
        if let chunks {
            let unpublished = manifest, database = plan.database
            let (name, added, packs) = try await Blocking.run("pgvault-backup-publish") {
                var manifest = unpublished
                let (name, added) = try chunks.publish(&manifest, database: database, started: started)
                return (name, added, manifest.packs)
            }
            manifest.packs = packs
            published = true
            let totals = progress.value
            var summary = BackupSummary(
                status: "complete", archive: chunks.repository.location + "/" + name, database: plan.database, tables: tables.count, units: done.count,
                rows: totals.rows, rawBytes: totals.rawBytes, archiveBytes: added,
                seconds: Date().timeIntervalSince(started), snapshotTime: facts.time, walLSN: facts.walLSN, manifest: manifest,
                standby: facts.standby)
            summary.unitsUnchanged = unchanged?.taken.value
            return summary
        }
        let finalManifest = manifest
        let archiveBytes = try await Blocking.run("pgvault-backup-publish") {
            try Cancellation.check()
            // Every member was committed (whole) through the store; a folder
            // archive's become durable here, before the manifest, the last
            // object (a tar's are read back into the tar, which is fsynced).
            if options.form == .directory { try deferredSync.flush() }
            try ArchiveDestination(stagingFolder: staging).put(finalManifest)
            let bytes = try publish(staging: staging, manifest: finalManifest, options: options)
            if options.form == .file { Files.removeTree(staging) }
            return bytes
        }
        published = true
        let totals = progress.value
        return BackupSummary(
            status: "complete", archive: options.output, database: plan.database, tables: tables.count, units: done.count,
            rows: totals.rows, rawBytes: totals.rawBytes, archiveBytes: archiveBytes,
            seconds: Date().timeIntervalSince(started), snapshotTime: facts.time, walLSN: facts.walLSN, manifest: manifest,
            standby: facts.standby)
    }
}
