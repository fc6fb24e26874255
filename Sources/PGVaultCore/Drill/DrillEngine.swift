import Foundation
import PGClient

/// A restore drill: the backup restored somewhere harmless with the restore
/// engine, verified with the verify engine (counts, digests, foreign keys),
/// the chat service's queries tried, each phase timed, the result recorded
/// in the repository beside the backup, and the place cleaned up.
public enum DrillEngine {
    public static func run(_ options: DrillOptions) async throws -> DrillResult {
        let started = Date()
        let log = options.log ?? { _ in }
        let backup = try await Blocking.run("pgvault-drill-open") {
            try RepositoryBackup.open(options.backup, in: try ChunkRepository.open(path: options.repository, credentials: options.credentials), command: "drill")
        }
        defer { backup.release() }
        var phases = DrillPhases()
        phases.fetch = Date().timeIntervalSince(started)
        var place: DrillPlace?
        do {
            let setupStart = Date()
            place = try await Blocking.run("pgvault-drill-setup") { try DrillPlace.prepare(options, backup: backup, log: log) }
            guard let place else { throw CancellationError() }
            phases.setup = Date().timeIntervalSince(setupStart)
            log("restoring \(backup.name) into \(place.database) (\(place.description))")

            var restore = RestoreOptions(archive: "", conninfo: place.conninfo)
            restore.repositoryBackup = backup
            restore.jobs = options.jobs
            // The source's roles need not exist where a drill restores.
            restore.noOwner = true
            restore.noPrivileges = true
            restore.verify = true
            // A drill proves the backup whole: every table read back and compared.
            restore.verification = .full
            restore.log = log
            let summary = try await RestoreEngine.run(restore)
            phases.fetch += summary.fetchSeconds
            phases.schema = summary.schemaSeconds
            phases.load = summary.loadSeconds
            phases.postData = summary.postDataSeconds
            phases.verify = summary.verifySeconds

            let smokeStart = Date()
            log("running the chat service's queries")
            let smoke = try await Blocking.run("pgvault-drill-smoke") { [conninfo = place.conninfo] in
                let conn = try PGConnection(conninfo: conninfo, applicationName: "pgvault drill")
                try conn.execute("SET enable_seqscan = off")
                return try SmokeQuery.chat.map { try $0.run(conn) }
            }
            phases.smoke = Date().timeIntervalSince(smokeStart)

            let passed = summary.verifyOK == true && !smoke.contains { $0.status == "failed" }
            let kept = await teardown(place, keep: options.keep)
            var result = DrillResult(
                status: passed ? "passed" : "failed", repository: options.repository, backup: backup.name,
                database: backup.manifest.database.name, place: place.description, drillDatabase: place.database,
                startedAt: ISO8601.format(started), completedAt: ISO8601.format(Date()), phases: phases,
                recoverySeconds: phases.recovery, totalSeconds: Date().timeIntervalSince(started),
                units: summary.units, rows: summary.rows, bytes: summary.bytes,
                verify: summary.verifyOK == true ? "ok" : "failed", verifyFailures: summary.verifyFailures, smoke: smoke,
                spaceCheck: place.spaceCheck, kept: kept, cleanedUp: place.cleanedUp, notes: place.notes + summary.notes, record: nil)
            let problems = summary.verifyFailures + smoke.filter { $0.status == "failed" }.map { "smoke query '\($0.name)': \($0.detail)" }
            do {
                result.record = try await record(backup, result.place, outcome: result.status, phases: phases, started: started, problems: problems)
            } catch {
                result.notes.append("the drill's record could not be written to the repository: \(PGVaultError.classify(error))")
            }
            return result
        } catch {
            if let place { _ = await teardown(place, keep: options.keep) }
            let what = place?.description ?? "its place (\(options.place.label))"
            _ = try? await record(backup, what, outcome: "error", phases: phases, started: started, problems: ["\(PGVaultError.classify(error))"])
            throw error
        }
    }

    /// Writes the drill's record beside the backup; returns its key. Runs
    /// in a task of its own, so that a drill interrupted by a signal still
    /// records that it broke off.
    static func record(_ backup: RepositoryBackup, _ place: String, outcome: String, phases: DrillPhases, started: Date, problems: [String]) async throws -> String {
        let now = Date()
        let record = DrillRecord(
            backup: backup.name, startedAt: ISO8601.format(started), completedAt: ISO8601.format(now), place: place,
            outcome: outcome, phases: phases, recoverySeconds: phases.recovery, totalSeconds: now.timeIntervalSince(started),
            problems: Array(problems.prefix(10)))
        return try await Task.detached {
            try await Blocking.run("pgvault-drill-record") {
                try DrillRecords.write(record, at: now, in: backup.repository)
                return DrillRecords.objectKey(backup: backup.name, at: now)
            }
        }.value
    }

    /// Drops the database or removes the scratch cluster (unless `keep`),
    /// in a task of its own: it must happen after a signal too. Returns what
    /// was kept.
    static func teardown(_ place: DrillPlace, keep: Bool) async -> String? {
        await Task.detached {
            (try? await Blocking.run("pgvault-drill-teardown") { place.teardown(keep: keep) }) ?? nil
        }.value
    }
}

extension DrillOptions.Place {
    var label: String {
        switch self {
        case .target(let conninfo): return "server \(ConnInfo.redacted(conninfo))"
        case .scratch: return "scratch cluster"
        }
    }
}
