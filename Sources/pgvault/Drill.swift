import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Drill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "drill",
            abstract: "Prove a backup restores: restore it somewhere harmless, check it, time it, record it.",
            discussion: """
                Restores a backup of a format-2 repository into a database of its own, \
                verifies it as restore does (row counts and content digests against the \
                manifest, foreign keys), runs the queries the chat service depends on (the \
                newest messages of the busiest channel, a user's servers, a member's roles: \
                each must return rows and its plan must use an index), times each phase \
                (fetch, schema, load, post-data, verify) and removes what it made.

                --scratch-cluster (the default): a throwaway PostgreSQL of the backup's major \
                version, initdb'd in /tmp/pgvault-drill-XXXXXX and listening only on a unix \
                socket there, so it never collides with a running server. Its programs are \
                found as pg_dump's are (or --pg-bin). As root, it runs as --scratch-user.

                --target CONN: a database pgvault_drill_<backup>_<random> created on the \
                server CONN names (its role needs CREATEDB), dropped at the end. Refused \
                when the server's disk lacks the space the backup needs; when that cannot \
                be checked (a remote server), the drill says so and goes on. A drill never \
                drops a database it did not create.

                Each drill is recorded in the repository beside the backup (drills/<backup>/<time>), \
                readable with the key file: list shows each backup's last drill. A drill \
                killed outright leaves its database or cluster behind; the next drill \
                removes it.

                Examples:
                  pgvault drill --repo /backups/chat --identity /secure/chat-backups.key
                  pgvault drill --repo /backups/chat --backup latest --identity /secure/chat-backups.key \\
                      --target "host=db2 dbname=postgres user=postgres" --jobs 4 \\
                      --metrics-file /var/lib/node_exporter/pgvault-drill.prom

                Exit status: 0 the drill passed; 1 a check failed (the report names it); \
                2 the drill could not finish (the backup is damaged or missing, no server); \
                130 or 143 interrupted; 64 usage error. docs/runbooks/restore-drill.md says \
                how to read a failed drill.
                """)

        @OptionGroup var repository: RepositoryBackupOptions

        @Option(help: ArgumentHelp("Restore into a new database on the server this conninfo names (instead of a scratch cluster).", valueName: "CONN"))
        var target: String?

        @Flag(help: "Restore into a throwaway local PostgreSQL of the backup's major version (the default).")
        var scratchCluster = false

        @Option(help: ArgumentHelp("With --scratch-cluster: the folder of PostgreSQL's server programs (initdb, pg_ctl, postgres).", valueName: "DIR"))
        var pgBin: String?

        @Option(help: ArgumentHelp("With --scratch-cluster, when pgvault runs as root: the user the server runs as (default postgres).", valueName: "USER"))
        var scratchUser: String?

        @Option(name: [.short, .long], parsing: .unconditional, help: "Parallel worker connections.")
        var jobs: Int = 2

        @Flag(help: "Leave the restored database (and a scratch cluster, running) for a look; the report says how to remove it.")
        var keep = false

        @Option(help: ArgumentHelp("Write Prometheus metrics (last drill success, time, recovery seconds) to this file.", valueName: "PATH"))
        var metricsFile: String?

        @Flag(help: "Print the report as one JSON object on one line (docs/cli.md).")
        var json = false

        @Flag(help: "No messages on standard error.")
        var quiet = false

        func validate() throws {
            try repository.validate(archive: nil, required: true)
            if target != nil && scratchCluster { throw ValidationError("give '--target CONN' or '--scratch-cluster', not both") }
            if let target {
                do { _ = try ConnInfo.parseOrThrow(target) } catch let error as PGError {
                    throw ValidationError("'--target': \(error.message)")
                }
                hidePasswordFromCommandLine(target)
            }
            if target != nil && (pgBin != nil || scratchUser != nil) {
                throw ValidationError("'--pg-bin' and '--scratch-user' go with '--scratch-cluster', not '--target'")
            }
            if jobs < 1 || jobs > 64 { throw ValidationError("'--jobs' must be between 1 and 64") }
        }

        func run() async throws {
            let repo = repository.repo ?? ""
            var options = DrillOptions(repository: repo, credentials: repository.credentials, place: target.map { .target($0) } ?? .scratch)
            options.backup = repository.backup
            options.pgBin = pgBin
            options.scratchUser = scratchUser
            options.jobs = jobs
            options.keep = keep
            if !quiet { options.log = { note("pgvault drill: \($0)") } }
            var report = CommandReport("drill", json: json)
            report.failureFields = ["repository": repo, "backup": repository.backup]
            let leaves = "the drill's database or scratch cluster was removed; the next drill removes any left"
            report.interruptedLeaves = leaves
            let metricsFile = metricsFile
            report.onFailure = metricsFile.map { path in { try? MetricsFile.writeDrill(path, repository: repo, success: false, recoverySeconds: nil) } }
            try await report.run {
                if let metricsFile { try OutputPath.checkWritableFile(metricsFile, what: "--metrics-file") }
                let result = try await cancellingOnSignals(leaving: leaves) { [options] in try await DrillEngine.run(options) }
                if let metricsFile {
                    do {
                        try MetricsFile.writeDrill(metricsFile, repository: repo, success: result.passed, recoverySeconds: result.recoverySeconds)
                    } catch {
                        note("pgvault drill: warning: the metrics file was not written: \(error)")
                    }
                }
                report.result(result) { Self.text(result) }
                if !result.passed { throw ExitCode(1) }
            }
        }

        static func text(_ r: DrillResult) -> String {
            func s(_ seconds: Double) -> String { String(format: "%.1f s", seconds) }
            let p = r.phases
            var lines = [
                "drill \(r.status.uppercased()): backup \(r.backup) of \(r.database) → \(r.drillDatabase) (\(r.place))",
                "  recovery time \(s(r.recoverySeconds)): fetch \(s(p.fetch)), schema \(s(p.schema)), load \(s(p.load)), post-data \(s(p.postData))",
                "  then verify \(s(p.verify)), smoke queries \(s(p.smoke)); setup \(s(p.setup)); \(s(r.totalSeconds)) in all",
                "  \(r.units) units, \(r.rows) rows, \(Format.bytes(r.bytes)) of COPY data",
                r.verify == "ok" ? "  verified: row counts, content digests and foreign keys match the backup"
                    : "  verification FAILED (\(r.verifyFailures.count) findings)",
            ]
            lines += r.verifyFailures.prefix(20).map { "    - \($0)" }
            for q in r.smoke { lines.append("  smoke \(q.status): \(q.name): \(q.detail)") }
            if let space = r.spaceCheck { lines.append("  disk space: \(space)") }
            for c in r.cleanedUp { lines.append("  removed first, left by a killed drill: \(c)") }
            if let kept = r.kept { lines.append("  kept (--keep): \(kept)") }
            for n in r.notes { lines.append("  note: \(n)") }
            lines.append(r.record.map { "  recorded in the repository: \($0)" } ?? "  NOT recorded in the repository (see the notes)")
            return lines.joined(separator: "\n")
        }
    }
}
