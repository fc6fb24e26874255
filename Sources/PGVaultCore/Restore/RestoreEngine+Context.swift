import Foundation
import PGClient

extension RestoreEngine {
    struct Prepared: Sendable {
        var plan: LoadPlan
        var finished: [String: Int64]
        var created: [String]
        var dropped: [String]
        var database: String
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
            try RestoreEngine.checkMajor(
                archive: options.archiveName, source: manifest.server,
                targetVersion: leader.parameterStatus("server_version") ?? String(leader.serverVersionNumber),
                targetNumber: leader.serverVersionNumber)
            try Session.prepare(leader, options)
            let database = try leader.query("SELECT current_database()").firstRow().string(0)
            try checkEncoding(database)
            try lock(database)
            let state = try RestoreJournal.state(leader)
            var dropped: [String] = []
            var createdBefore: [String] = []
            if options.resume {
                guard let state else {
                    throw PGVaultError(.server, "--resume: database \(database) holds no journal of an interrupted restore (schema \(RestoreJournal.schema)); the restore finished, or never started. Run without --resume.")
                }
                guard RestoreEngine.sameArchive(journal: state.archiveID, archiveID: archiveID, manifest: manifest) else {
                    throw PGVaultError(.server, "--resume: the interrupted restore in \(database) was of another archive (\(state.archive), started \(state.startedAt)); resume it with that archive, or drop schema \(RestoreJournal.schema) to abandon it")
                }
                guard state.fingerprint == options.fingerprint else {
                    throw PGVaultError(.server, "--resume: the interrupted restore was started with other options (\(state.fingerprint)); resume with the same --data-only/--table/--exclude-table/--since/--until/--include-default/--no-create-partitions")
                }
                log("resuming the restore of \(state.archive) started \(state.startedAt)")
            } else if let state {
                let done = try RestoreJournal.finishedUnits(leader).count
                throw PGVaultError(.server, "database \(database) holds the journal of an unfinished restore of \(state.archive) (started \(state.startedAt), \(done) units loaded). Run the same command with --resume to finish it, or drop schema \(RestoreJournal.schema) to abandon it (what was loaded stays).")
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
                    throw PGVaultError(.server, "the target does not match the archive; nothing was loaded. What differs:\n"
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
                        throw PGVaultError.server("cannot create partition \(c.schema).\(c.name) of \(c.parentSchema).\(c.parentName) \(c.bound): the target's DEFAULT partition already holds rows in that range (\(error)). Move those rows out of the DEFAULT partition, or restore with --no-create-partitions to route the archive's rows through the parent.", error)
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
                throw PGVaultError(.server, "database \(database) has encoding \(target) but the archive's binary COPY units are in \(manifest.database.encoding), which binary COPY does not convert; nothing was changed. Restore into a database created WITH ENCODING '\(manifest.database.encoding)', or take the backup with --copy-format text.")
            }
        }

        /// One restore per database at a time (a session advisory lock held by the leader).
        func lock(_ database: String) throws {
            try AdvisoryLock(job: "restore", database: database).acquire(leader) { holder in
                PGVaultError(.server, "another pgvault restore into database \(database) is running\(holder); wait for it to finish")
            }
        }
    }
}
