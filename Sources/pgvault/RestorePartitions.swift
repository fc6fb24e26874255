import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct RestorePartitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restore-partitions",
            abstract: "Bring ranges of partitioned tables back from cold storage and re-attach them.",
            discussion: """
                Takes the cold archives of each --table whose range overlaps [--since, --until) \
                (a month YYYY-MM given to --until includes that month), verifies them, and \
                refuses as a whole if a table has no such archive, a range overlaps a partition \
                already attached, a table of the partition's name exists, or the DEFAULT \
                partition holds rows in the range. Then in one transaction for every table it \
                re-creates each partition with its archived \
                bounds, loads its rows and the referencing rows archived with it, compares \
                counts and digests with the archive, and commits. Restored archives move to \
                <repo>/cold/<schema>.<table>/restored/. In a format-2 repository the archives \
                are objects in it; an encrypted one needs --identity.

                Examples:
                  pgvault restore-partitions -d "dbname=chat" --repo /backups/chat \\
                      --table messages --since 2024-01 --until 2024-03
                  pgvault restore-partitions -d "dbname=chat" --repo /backups/chat \\
                      --table messages --table audit_logs --since 2024-01 --until 2024-03 \\
                      --dry-run

                Exit status: 0 when every selected range is back (or nothing was selected); \
                2 otherwise, and nothing was changed; 130 or 143 when interrupted.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Repository folder (cold archives are under DIR/cold/).", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Option(help: ArgumentHelp("With a format-2 repository: an age identity file that decrypts it (needed when it is encrypted).", valueName: "FILE"))
        var identity: String?

        @Option(help: ArgumentHelp("With a format-2 repository: its key file (default: ~/.config/pgvault/keys/<id>.key; not needed with --identity).", valueName: "FILE"))
        var keyFile: String?

        @Option(name: [.short, .long], parsing: .singleValue, help: ArgumentHelp("A partitioned table (table or schema.table). Repeatable: every table comes back, or none.", valueName: "TABLE"))
        var table: [String] = []

        @Option(help: ArgumentHelp("Start of the window: YYYY-MM, a date or a time.", valueName: "WHEN"))
        var since: String?

        @Option(help: ArgumentHelp("End of the window: YYYY-MM (that month included), or an exclusive date or time.", valueName: "WHEN"))
        var until: String?

        @Flag(help: "Check and list what would be restored; change nothing.")
        var dryRun = false

        @Option(help: ArgumentHelp("How long to wait for each table lock before failing, e.g. 30s.", valueName: "DURATION"))
        var lockWaitTimeout = LockTimeout(argument: "30s")!

        @Option(help: ArgumentHelp("Write Prometheus metrics to this file.", valueName: "PATH"))
        var metricsFile: String?

        @Flag(help: "Print the summary as one JSON object on one line (docs/cli.md).")
        var json = false

        func validate() throws {
            if table.isEmpty { throw ValidationError("give at least one '--table TABLE'") }
            if since == nil && until == nil { throw ValidationError("give '--since' and/or '--until' (e.g. --since 2024-01 --until 2024-03)") }
        }

        func run() async throws {
            var report = CommandReport("restore-partitions", json: json, database: connection.databaseName)
            report.onFailure = failureMetrics(dryRun ? nil : metricsFile, command: "restore-partitions", database: connection.databaseName)
            try await report.run {
                if let metricsFile, !dryRun { try OutputPath.checkWritableFile(metricsFile, what: "--metrics-file") }
                var options = ColdRestoreOptions(conninfo: connection.dbname, repo: repo, tables: table, since: since, until: until)
                options.dryRun = dryRun
                options.identityFile = identity
                options.keyFile = keyFile
                options.lockWaitTimeout = lockWaitTimeout.postgres
                if isatty(2) != 0 { options.progress = { note($0) } }
                var summary = try await cancellingOnSignals(leaving: "nothing was restored: the transaction was rolled back") { [options] in
                    try await PartitionRestorer.run(options)
                }
                if !dryRun {
                    summary.warnings = writeSuccessMetrics(metricsFile, command: "restore-partitions", database: summary.database, summary: summary.metrics)
                }
                report.result(summary) {
                    let rows = summary.partitions.map { p in
                        [p.partition, p.from, p.to, String(p.rows),
                         p.referencingRows.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ").ifEmpty("-")]
                    }
                    return "\(dryRun ? "dry run (nothing changed): would restore" : "restored") \(summary.partitions.count) partition(s) of \(summary.tables.joined(separator: ", ")) in \(summary.database)\n"
                        + textTable(header: ["PARTITION", "FROM", "TO", "ROWS", "REFERENCING ROWS"], rows: rows)
                }
            }
        }
    }
}
