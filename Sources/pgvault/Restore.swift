import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restore",
            abstract: "Restore an archive into a database: partition-aware, parallel, resumable.",
            discussion: """
                Into an empty database: the pre-data schema, then the data over --jobs \
                connections, then indexes and constraints built in parallel (keys, indexes, \
                foreign keys, then triggers and the rest), then sequence values. A non-empty \
                target is refused unless --clean (drop what the archive holds, then restore) \
                or --data-only.

                --data-only loads into a prepared database (built by the migrations, say). \
                First every archived table and column is checked against the target; if \
                anything differs it is listed and nothing is loaded. The foreign keys \
                touching the loaded tables are dropped for the load and added back (and so \
                validated) at the end, and their triggers are disabled meanwhile, so an FK \
                cycle loads and a trigger (a member count) does not count rows twice.

                Partitions are matched by their bounds, not their names. A partition the \
                target lacks is created from the archive's bounds (--no-create-partitions: \
                not); where the target is partitioned differently, rows are copied into the \
                parent and the server routes them; rows that land in a DEFAULT partition are \
                reported.

                Each unit loads in one transaction with its journal entry (schema \
                pgvault_restore in the target, dropped at the end), with TRUNCATE + COPY \
                FREEZE where one unit fills a table. Every member's SHA-256 is checked while \
                it streams; a damaged member rolls its unit back and is named. After an \
                interruption (even SIGKILL), run the same command with --resume: finished \
                units are not loaded again.

                Before the target is touched, every member the restore reads is checked to \
                be in the archive with the size the manifest records; a missing or cut \
                member is named and nothing changes. The target server must run the \
                source's PostgreSQL major or a newer one (15 into 18 works); an older one \
                is refused, naming both versions, before anything changes.

                ARCHIVE - reads a tar from standard input (what backup --output - writes). \
                It is first copied whole to a temporary file under $TMPDIR (owner-only, \
                removed at the end; it needs as much free space as the archive): the \
                manifest is the tar's last member, and the members are checked first and \
                then read by --jobs connections at once, which a pipe cannot do. --jobs \
                and --resume then work as with a file: to resume, pipe in the same archive.

                The restore is verified (--verify standard, the default): each unit's COPY \
                row count against the manifest and the archive's checksums as it loads, and \
                PostgreSQL's validation of every key and foreign key. --verify full also \
                reads every restored table back, each once its own loads, keys and indexes \
                are done, and compares it with the archive (row \
                counts and content digests). --no-verify skips both.

                Examples:
                  pgvault restore /backups/chat/chat-20250101T000000Z \\
                      -d "dbname=chat_restored" --jobs 8
                  pgvault restore --repo /backups/chat --backup latest \\
                      --identity /secure/chat-backups.key -d "dbname=chat_restored"
                  pgvault restore chat.tar -d postgresql://app@db2/chat --data-only \\
                      --since 2025-06-01
                  pgvault restore chat.tar -d "dbname=chat" --data-only --table 'messages' \\
                      --order newest-first
                  pgvault restore chat.tar -d "dbname=chat_restored" --jobs 8 --resume
                  pgvault backup -d "dbname=chat" -o - \\
                      | ssh db2 pgvault restore - -d "dbname=chat_restored"

                Exit status: 0 restored and verified; 1 restored, but verification failed; \
                2 the restore failed (what is loaded is journaled: --resume finishes it); \
                130 or 143 interrupted by SIGINT or SIGTERM (--resume finishes it); \
                64 usage error.
                """)

        @Argument(help: ArgumentHelp("The archive: a directory or a tar file written by pgvault backup, or - for a tar on standard input.", valueName: "ARCHIVE"))
        var archive: String?

        @OptionGroup var repository: RepositoryBackupOptions

        @OptionGroup var connection: ConnectionOptions

        @Option(name: [.short, .long], parsing: .unconditional, help: "Parallel worker connections.")
        var jobs: Int = 2

        @Flag(help: "Load into the existing tables of a prepared database; apply no schema.")
        var dataOnly = false

        @Flag(help: "Drop what the archive holds first (with --data-only: empty the tables to be loaded).")
        var clean = false

        @Flag(help: "Finish an interrupted restore recorded in the target's journal.")
        var resume = false

        @OptionGroup var selection: TableSelectionOptions

        @Option(help: ArgumentHelp("Only range partitions holding rows at or after this time (e.g. 2025-01-01, 2025-01-01T12:00:00Z).", valueName: "TIME"))
        var since: String?

        @Option(help: ArgumentHelp("Only range partitions holding rows before this time.", valueName: "TIME"))
        var until: String?

        @Flag(help: "With --since/--until, also load DEFAULT partitions (their rows are not bounded in time).")
        var includeDefault = false

        @Option(help: ArgumentHelp("Load order: size (largest first) or newest-first (plain tables, then the most recent partitions).", valueName: "ORDER"))
        var order: RestoreOptions.Order = .size

        @Flag(inversion: .prefixedNo, help: "Create partitions the target lacks from the archive's bounds.")
        var createPartitions = true

        @Option(help: ArgumentHelp(
            "How the restore is proved: standard or full.",
            discussion: "standard (the default) collects what the load proves as it goes: each unit's COPY row count against the manifest, the archive's checksums checked while streaming, and PostgreSQL's validation of every key and foreign key. full also reads every restored table back and compares its row count and content digest with the archive. docs/architecture.md says what each proves and what it cannot.",
            valueName: "LEVEL"))
        var verify: RestoreOptions.Verification = .standard

        @Flag(help: "Do not verify the restore.")
        var noVerify = false

        @Flag(help: "ANALYZE the restored tables at the end.")
        var analyze = false

        @Flag(inversion: .prefixedNo, help: "Apply the backup's optimizer statistics after post-data (backups of PostgreSQL 18 and later).")
        var statistics = true

        @Flag(help: "Leave out ALTER ... OWNER TO (the target lacks the source's roles).")
        var noOwner = false

        @Flag(help: "Leave out GRANT and REVOKE.")
        var noPrivileges = false

        @Option(help: ArgumentHelp("maintenance_work_mem for loads and index builds.", valueName: "SIZE"))
        var maintenanceWorkMem: String = "256MB"

        @Option(parsing: .unconditional, help: ArgumentHelp(
            "Parallel workers per index build (max_parallel_maintenance_workers).",
            discussion: "0 by default: the --jobs connections already keep the server's cores busy. Raise it when --jobs is well below the server's cores.",
            valueName: "N"))
        var maintenanceWorkers = 0

        @Option(help: ArgumentHelp(
            "Write the statement timeline to this file: JSON Lines, one object per step (docs/architecture.md). Full restores only.",
            valueName: "FILE"))
        var timeline: String?

        @Flag(help: "Print the summary as one JSON object on one line (docs/cli.md).")
        var json = false

        @Flag(help: "No progress display or messages.")
        var quiet = false

        func validate() throws {
            if connection.dbname.isEmpty { throw ValidationError("'--dbname' is required: the database to restore into") }
            try repository.validate(archive: archive, required: true)
            if archive == "-" && isatty(0) != 0 {
                throw ValidationError("ARCHIVE '-' reads a tar from standard input, which is a terminal; pipe one in (pgvault backup -o - | pgvault restore - ...) or give the archive's path")
            }
            if jobs < 1 || jobs > 64 { throw ValidationError("'--jobs' must be between 1 and 64") }
            if timeline != nil && dataOnly {
                throw ValidationError("'--timeline' records a full restore's steps; --data-only loads and reattaches in phases and has none. Leave out one of them.")
            }
            if maintenanceWorkers < 0 || maintenanceWorkers > 64 { throw ValidationError("'--maintenance-workers' must be between 0 and 64") }
            if includeDefault && since == nil && until == nil {
                throw ValidationError("'--include-default' goes with '--since' or '--until'")
            }
            do { _ = try TimeWindow(since: since, until: until) } catch let error as PGVaultError {
                throw ValidationError(error.description)
            }
        }

        func run() async throws {
            let showProgress = !quiet && isatty(2) != 0
            var options = RestoreOptions(archive: archive ?? "", conninfo: connection.dbname)
            options.jobs = jobs
            options.dataOnly = dataOnly
            options.clean = clean
            options.resume = resume
            options.tables = selection.table
            options.excludeTables = selection.excludeTable
            options.window = try TimeWindow(since: since, until: until)
            options.includeDefaultPartitions = includeDefault
            options.order = order
            options.createPartitions = createPartitions
            options.verify = !noVerify
            options.verification = verify
            options.analyze = analyze
            options.statistics = statistics
            options.noOwner = noOwner
            options.noPrivileges = noPrivileges
            options.maintenanceWorkMem = maintenanceWorkMem
            options.maintenanceWorkers = maintenanceWorkers
            options.timeline = timeline
            if showProgress { options.progress = { RestoreProgressLine.show($0) } }
            if !quiet {
                options.log = { message in
                    if showProgress { ProgressLine.clear() }
                    note("pgvault restore: \(message)")
                }
            }
            var report = CommandReport("restore", json: json, database: connection.databaseName)
            report.failureFields = ["archive": archive ?? repository.repo ?? ""]
            try await report.run {
                options.repositoryBackup = try await repository.open(command: "restore")
                defer { options.repositoryBackup?.release() }
                let summary = try await cancellingOnSignals(
                    leaving: "the target database is left as the interrupted run made it: run the same restore with --resume to finish"
                ) { [options] in try await RestoreEngine.run(options) }
                if showProgress { ProgressLine.clear() }
                report.result(summary) { Self.text(summary) }
                if summary.verifyOK == false {
                    note("pgvault restore: verification FAILED:\n" + summary.verifyFailures.prefix(20).map { "  - \($0)" }.joined(separator: "\n"))
                    throw ExitCode(1)
                }
            }
        }

        static func text(_ s: RestoreSummary) -> String {
            var lines = [
                "restore \(s.status): \(s.archive) → database \(s.database) (\(s.mode)\(s.resumed ? ", resumed" : ""))",
                "  \(s.units) units loaded\(s.unitsSkipped > 0 ? " (\(s.unitsSkipped) by the interrupted run)" : ""), \(s.rows) rows, \(Format.bytes(s.bytes)) of COPY data",
                "  \(String(format: "%.1f", s.seconds)) s in all: data \(String(format: "%.1f", s.loadSeconds)) s, \(s.mode == "full" ? "post-data (\(s.postDataStatements) statements)" : "constraints") \(String(format: "%.1f", s.postDataSeconds)) s; \(s.sequences) sequences set",
            ]
            if let wall = s.scheduledSeconds, let b = s.bound {
                lines.append("  data and post-data \(String(format: "%.2f", wall)) s against a lower bound of \(String(format: "%.2f", b.lowerBoundSeconds)) s (critical path \(String(format: "%.2f", b.criticalPathSeconds)) s; statements \(String(format: "%.2f", b.statementSeconds)) s over \(b.jobs) connections\(b.lockRelation.map { "; steps that cannot overlap for their locks on \($0) \(String(format: "%.2f", b.lockSeconds)) s" } ?? ""))")
            }
            if !s.dropped.isEmpty { lines.append("  dropped first (--clean): \(s.dropped.count) objects") }
            if !s.createdPartitions.isEmpty { lines.append("  created partitions: \(s.createdPartitions.joined(separator: ", "))") }
            if s.routedUnits > 0 { lines.append("  \(s.routedUnits) units routed through their partitioned parent") }
            for (partition, rows) in s.rowsInDefaultPartitions.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(rows) rows landed in DEFAULT partition \(partition)")
            }
            for n in s.notes { lines.append("  note: \(n)") }
            switch s.verifyOK {
            case true? where s.verifyLevel == "full": lines.append("  verified (full): row counts, content digests and foreign keys match the archive")
            case true?: lines.append("  verified (standard): row counts and checksums matched as each unit loaded; keys and foreign keys validated by PostgreSQL")
            case false?: lines.append("  verification FAILED (\(s.verifyFailures.count) findings)")
            case nil: lines.append("  not verified (--no-verify)")
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// The restore's progress line on a terminal's standard error.
enum RestoreProgressLine {
    static func show(_ p: RestoreProgress) {
        let line: String
        if p.phase == "load" {
            line = "load: units \(p.unitsDone)/\(p.unitsTotal)  rows \(p.rows)  \(Format.bytes(p.bytes))/\(Format.bytes(p.bytesTotal))  \(Format.bytes(Int64(p.rate)))/s  ETA \(Format.duration(p.eta ?? .infinity))"
        } else {
            line = "\(p.phase)\(p.phaseTotal > 0 ? ": \(p.phaseDone)/\(p.phaseTotal)" : "")  (\(Format.duration(p.elapsed)) in all)"
        }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }
}
