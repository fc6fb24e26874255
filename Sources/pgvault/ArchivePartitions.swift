import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct ArchivePartitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "archive-partitions",
            abstract: "Move old range partitions to cold storage: dump, verify, then detach and drop.",
            discussion: """
                Selects the partitions of each --table whose upper bound is at or before the \
                cutoff (a DEFAULT partition never is), oldest first. For each: dump it into a \
                cold archive under <repo>/cold/, verify the archive's checksums, then in one \
                transaction lock it, compare its rows (count and digest) with the archive, \
                remove the rows of other tables that reference it (--referencing-rows archive; \
                they are in the same archive), DETACH it and DROP it (or keep it with \
                --keep-detached). Any failure before the COMMIT leaves the partition attached \
                with every row. In a format-2 repository the archive is stored in its packs, \
                deduplicated against the backups (no identity needed). With --attach-to TABLE \
                each partition instead moves to that partitioned table (the design's \
                messages_archive) in one transaction: DETACH, then ATTACH with the same bounds; \
                rows of other tables that reference it are refused. See \
                docs/cold-storage.md and docs/runbooks/cold-storage.md.

                Examples:
                  pgvault archive-partitions -d "dbname=chat" --table messages \\
                      --older-than 12months --repo /backups/chat --dry-run
                  pgvault archive-partitions -d "dbname=chat" --table messages \\
                      --older-than 12months --attach-to messages_archive
                  pgvault archive-partitions -d "dbname=chat" \\
                      --table messages --table audit_logs \\
                      --older-than 12months --repo /backups/chat --referencing-rows archive \\
                      --json --metrics-file /var/lib/node_exporter/pgvault_cold.prom

                Exit status: 0 when every selected partition was archived (or nothing was \
                selected); 2 otherwise (a partition not archived stays attached with every \
                row); 130 or 143 when interrupted.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(name: [.short, .long], parsing: .singleValue, help: ArgumentHelp("A range-partitioned table (table or schema.table). Repeatable.", valueName: "TABLE"))
        var table: [String] = []

        @Option(help: ArgumentHelp("Age cutoff from the start of the current month (UTC): 12months, 90days, 1year.", valueName: "AGE"))
        var olderThan: String?

        @Option(help: ArgumentHelp("Fixed cutoff: partitions whose upper bound is at or before this date or time.", valueName: "DATE"))
        var before: String?

        @Option(help: ArgumentHelp("Repository folder; cold archives go under DIR/cold/ (in a format-2 repository: into its packs, deduplicated). Not used with --attach-to.", valueName: "DIR"))
        var repo: String?

        @Option(help: ArgumentHelp("Move each partition to this partitioned table instead (DETACH, then ATTACH with the same bounds, in one transaction), e.g. messages_archive.", valueName: "TABLE"))
        var attachTo: String?

        @OptionGroup var s3: S3EndpointOption

        @Option(help: ArgumentHelp("A format-2 repository's key file (default: ~/.config/pgvault/keys/<id>.key). No identity is needed to archive.", valueName: "FILE"))
        var keyFile: String?

        @Option(help: ArgumentHelp("Rows of other tables that reference an archived partition: refuse (list them and stop) or archive (archive them with it and delete them in the detach's transaction).", valueName: "refuse|archive"))
        var referencingRows: ColdArchiveOptions.ReferencingRows = .refuse

        @Flag(help: "Keep each partition as a detached table instead of dropping it.")
        var keepDetached = false

        @Flag(help: "Only list what would be archived (and what would be refused).")
        var dryRun = false

        @Option(parsing: .unconditional, help: ArgumentHelp("At most this many partitions in this run (oldest first).", valueName: "N"))
        var limit: Int?

        @Option(help: ArgumentHelp("How long to wait for each table lock before failing, e.g. 30s.", valueName: "DURATION"))
        var lockWaitTimeout = LockTimeout(argument: "30s")!

        @Option(parsing: .unconditional, help: ArgumentHelp("zstd level (1-19).", discussion: "The same default as backup's (docs/cli.md)."))
        var compressLevel: Int32 = 2

        @Option(help: ArgumentHelp("Write Prometheus metrics (last success, duration, bytes, rows) to this file.", valueName: "PATH"))
        var metricsFile: String?

        @Flag(help: "Print the summary as one JSON object on one line (docs/cli.md).")
        var json = false

        func validate() throws {
            if table.isEmpty { throw ValidationError("give at least one '--table TABLE'") }
            if (olderThan == nil) == (before == nil) { throw ValidationError("give exactly one of '--older-than AGE' and '--before DATE'") }
            if let olderThan, DurationText.calendarInterval(olderThan) == nil {
                throw ValidationError("'--older-than \(olderThan)': write a count and a unit of days or longer, e.g. 12months, 90days, 1year, 8weeks")
            }
            if let limit, limit < 1 { throw ValidationError("'--limit' must be at least 1") }
            if attachTo == nil, repo == nil { throw ValidationError("give '--repo DIR' (where the cold archives go), or '--attach-to TABLE' to move the partitions to an archive table") }
            if attachTo != nil {
                if repo != nil { throw ValidationError("'--attach-to' moves partitions inside the database and writes no archive: leave out '--repo'") }
                if referencingRows == .archive {
                    throw ValidationError("'--attach-to' cannot take '--referencing-rows archive': a partition of \(attachTo ?? "") cannot satisfy foreign keys to \(table.joined(separator: ", ")). Remove the referencing rows first, or archive to cold storage without '--attach-to'")
                }
                if keepDetached { throw ValidationError("'--attach-to' attaches each partition to the archive table: '--keep-detached' does not apply") }
            }
            if !(1...19).contains(compressLevel) { throw ValidationError("'--compress-level' must be between 1 and 19") }
        }

        func run() async throws {
            var report = CommandReport("archive-partitions", json: json, database: connection.databaseName)
            report.onFailure = failureMetrics(dryRun ? nil : metricsFile, command: "archive-partitions", database: connection.databaseName)
            try await report.run {
                if let metricsFile, !dryRun { try OutputPath.checkWritableFile(metricsFile, what: "--metrics-file") }
                let cutoff: ColdArchiveOptions.Cutoff = olderThan.map { .olderThan($0) } ?? .before(before ?? "")
                var options = ColdArchiveOptions(conninfo: connection.dbname, repo: repo ?? "", tables: table, cutoff: cutoff)
                options.attachTo = attachTo
                options.referencingRows = referencingRows
                options.keepDetached = keepDetached
                options.dryRun = dryRun
                options.limit = limit
                options.lockWaitTimeout = lockWaitTimeout.postgres
                options.compressionLevel = compressLevel
                options.keyFile = keyFile
                if isatty(2) != 0 { options.progress = { note($0) } }
                var summary = try await cancellingOnSignals(leaving: "no partition was detached or dropped by the interrupted step, and its cold archive was not published") { [options] in
                    try await PartitionArchiver.run(options)
                }
                if !dryRun {
                    summary.warnings = writeSuccessMetrics(metricsFile, command: "archive-partitions", database: summary.database, summary: summary.metrics)
                }
                report.result(summary) { Self.human(summary) }
            }
        }

        static func human(_ s: ColdArchiveSummary) -> String {
            let moved = s.partitions.first { $0.attachedTo != nil }?.attachedTo
            let verb = s.dryRun ? "dry run (nothing changed)" : (s.partitions.isEmpty ? "nothing to archive" : moved.map { "moved to \($0)" } ?? "archived")
            var lines = ["\(verb): database \(s.database), cutoff \(s.cutoff)"]
            guard !s.partitions.isEmpty else { return lines[0] }
            let rows = s.partitions.map { p in
                [p.partition, p.from, p.to, p.rows.map(String.init) ?? "-",
                 p.referencingRows.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ").ifEmpty("-"),
                 p.action, p.archiveBytes > 0 ? Format.bytes(p.archiveBytes) : "-"]
            }
            lines.append(textTable(header: ["PARTITION", "FROM", "TO", "ROWS", "REFERENCING ROWS", "ACTION", "SIZE"], rows: rows))
            for p in s.partitions { if let reason = p.reason { lines.append("  \(p.partition) refused: \(reason)") } }
            return lines.joined(separator: "\n")
        }
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
