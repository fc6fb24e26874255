import ArgumentParser
import Foundation
import PGVaultCore

extension PGVaultCommand {
    struct WalStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "wal-status",
            abstract: "Check that WAL archiving works, so point-in-time recovery is possible.",
            discussion: """
                Checks the archiving settings (wal_level, archive_mode, archive_command or \
                archive_library, archive_timeout), pg_stat_archiver (archived and failed \
                counts, the last archived and last failed segment, whether archiving is \
                failing now), the backlog (.ready files, and the distance from the last \
                archived segment to the current WAL file) and, with --archive-dir, the \
                archive folder itself: from which base backup the cluster can be recovered \
                and up to when (pitr: the newest pg_basebackup whose .backup file is in \
                the folder, or --base-backup, and the unbroken WAL after it along the \
                timeline history), segments contiguous from the start to the last \
                archived one (every gap named), timeline history files present, no segment \
                of the wrong size (a short one is damage).

                Exit status: as monitoring plugins report it, 0 OK, 1 WARNING, 2 CRITICAL, \
                3 UNKNOWN (could not connect, or a query failed). The worst check \
                wins, in the order OK < UNKNOWN < WARNING < CRITICAL. Usage errors exit 64.

                CRITICAL: archiving failing now (the last failure is newer than the last \
                success; the failing segment is named); archive_mode off, wal_level minimal, \
                an empty or do-nothing archive_command (the fix is in the message); --switch \
                not archived within --timeout; no base backup in --archive-dir, or the WAL \
                after it broken (the missing or short segment is named); a gap, a \
                wrong-size segment or a needed history file missing in --archive-dir; a \
                threshold exceeded twice over.
                --max-age AGE: WARNING when the last successful archive is older than AGE, \
                CRITICAL when older than 2 x AGE - while files wait to be archived (a server \
                that wrote nothing has nothing to archive, whatever the age).
                --max-backlog N: WARNING when more than N files wait, CRITICAL above 2 x N.

                Roles: a superuser or a role granted pg_monitor can run every check except \
                --switch, which pg_monitor does not include: it needs superuser or \
                GRANT EXECUTE ON FUNCTION pg_switch_wal() TO <role>. \
                A check the role may not run is shown as SKIPPED with the reason and does \
                not change the status; one you asked for (--switch, an unreadable \
                --archive-dir) is WARNING. Without pg_monitor the backlog is estimated from \
                WAL positions instead of counted.

                Examples:
                  pgvault wal-status -d "host=db1 user=monitor dbname=postgres"
                  pgvault wal-status -d "dbname=postgres" --max-age 15m --max-backlog 10
                  pgvault wal-status -d "dbname=postgres" --archive-dir /srv/wal \\
                      --base-backup /srv/basebackup/2025-06-01
                  pgvault wal-status -d "user=postgres" --switch --timeout 1m
                  pgvault wal-status -d "dbname=postgres" --prometheus --label cluster=main
                  pgvault wal-status --offline --archive-dir /srv/wal --json

                More in docs/runbooks/wal-archiving.md (monitoring set-up, what to do for each CRITICAL).
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("The archive folder archive_command writes to, readable by pgvault: check it for gaps.", valueName: "DIR"))
        var archiveDir: String?

        @Option(help: ArgumentHelp(
            "Judge point-in-time recovery from this physical base backup: the folder pg_basebackup wrote, its backup_label or backup_manifest, or a .backup file (default: the newest usable .backup file in --archive-dir). Needs --archive-dir.",
            valueName: "PATH"))
        var baseBackup: String?

        @Option(help: ArgumentHelp(
            "The same as --base-backup. A pgvault backup is refused: it is logical, and no WAL can be replayed onto it.",
            valueName: "PATH"))
        var sinceBackup: String?

        @Option(help: ArgumentHelp("Check the archive from this WAL location (e.g. 0/1A2B3C4). Needs --archive-dir.", valueName: "LSN"))
        var sinceLSN: String?

        @Flag(name: .customLong("switch"), help: "Force a WAL switch (pg_switch_wal()) and wait up to --timeout for that segment to be archived.")
        var forceSwitch = false

        @Option(help: ArgumentHelp("How long --switch waits (e.g. 30s, 2m).", valueName: "DURATION"))
        var timeout: String = "30s"

        @Option(help: ArgumentHelp(
            "WARNING when the last successful archive is older than this while files wait (15m, 1h); CRITICAL at twice.",
            valueName: "DURATION"))
        var maxAge: String?

        @Option(parsing: .unconditional, help: ArgumentHelp("WARNING when more than N files wait to be archived; CRITICAL above 2N.", valueName: "N"))
        var maxBacklog: Int?

        @Option(help: ArgumentHelp(
            "On a standby: WARNING when replay is further behind than this (30s, 5m); CRITICAL at twice.", valueName: "DURATION"))
        var maxReplayLag: String?

        @Flag(help: "Print one JSON object on one line: status, exitCode, summary, checks, metrics.")
        var json = false

        @Flag(help: "Print Prometheus text exposition format (for node_exporter's textfile collector).")
        var prometheus = false

        // A bad label is a usage error (exit 64) before any work.
        @Option(name: .customLong("label"), help: ArgumentHelp(
            "With --prometheus: a label added to every sample, e.g. cluster=main (repeatable).", valueName: "NAME=VALUE"),
            transform: { try WalPrometheusLabel(parsing: $0) })
        var labels: [WalPrometheusLabel] = []

        @Flag(help: "Do not connect: check only --archive-dir (timeline and segment size come from the files).")
        var offline = false

        func validate() throws {
            if json && prometheus { throw ValidationError("--json and --prometheus are exclusive") }
            if sinceBackup != nil && baseBackup != nil { throw ValidationError("give --base-backup or --since-backup, not both") }
            if (sinceBackup != nil || baseBackup != nil || sinceLSN != nil) && archiveDir == nil {
                throw ValidationError("--base-backup, --since-backup and --since-lsn need --archive-dir")
            }
            for (flag, path) in [("--base-backup", baseBackup), ("--since-backup", sinceBackup)] {
                guard let path else { continue }
                if !FileManager.default.fileExists(atPath: path) { throw ValidationError("\(flag): \(path) does not exist") }
                if let why = WalBaseBackupReader.pgvaultBackupError(path) { throw ValidationError("\(flag): \(why)") }
            }
            if let sinceLSN, WalLSN(sinceLSN) == nil { throw ValidationError("--since-lsn: '\(sinceLSN)' is not an LSN like 0/1A2B3C4") }
            if offline && archiveDir == nil { throw ValidationError("--offline needs --archive-dir") }
            if offline && forceSwitch { throw ValidationError("--switch needs a connection, not --offline") }
            if DurationText.seconds(timeout) == nil { throw ValidationError("--timeout: '\(timeout)' is not a duration like 30s or 2m") }
            if let maxAge, DurationText.seconds(maxAge) == nil { throw ValidationError("--max-age: '\(maxAge)' is not a duration like 15m or 1h") }
            if let maxReplayLag, DurationText.seconds(maxReplayLag) == nil {
                throw ValidationError("--max-replay-lag: '\(maxReplayLag)' is not a duration like 30s or 5m")
            }
            if let maxBacklog, maxBacklog < 0 { throw ValidationError("'--max-backlog' must be 0 or more") }
        }

        func run() async throws {
            var options = WalStatusOptions(conninfo: connection.dbname)
            options.offline = offline
            options.archiveDir = archiveDir
            options.baseBackup = baseBackup ?? sinceBackup
            options.sinceLSN = sinceLSN.flatMap(WalLSN.init)
            options.forceSwitch = forceSwitch
            options.switchTimeout = DurationText.seconds(timeout) ?? 30
            options.thresholds = WalThresholds(
                maxAge: maxAge.flatMap(DurationText.seconds), maxBacklog: maxBacklog.map(Int64.init),
                maxReplayLag: maxReplayLag.flatMap(DurationText.seconds))
            if forceSwitch && !json && !prometheus {
                note("pgvault wal-status: switching WAL on \(connection.display) and waiting up to \(timeout) for the segment to be archived")
            }
            let report = await WalStatusRunner.run(options)
            if json {
                print(report.json())
            } else if prometheus {
                print(report.prometheus(labels: labels.map { ($0.name, $0.value) }), terminator: "")
            } else {
                print(report.table())
            }
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        }
    }
}
