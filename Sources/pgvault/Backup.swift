import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a consistent, parallel backup into a zstd-compressed archive.",
            discussion: """
                Every table and partition is streamed with COPY from one snapshot (exported by \
                a leader connection and imported by every worker, with ACCESS SHARE locks \
                taken first), compressed with zstd, and described by manifest.json: row counts, \
                SHA-256 of every member, an order-independent digest of every unit's rows, the \
                snapshot's time and WAL position. The schema comes from the server-matching \
                pg_dump. Nothing exists under the final name until the archive is complete.

                Examples:
                  pgvault backup -d postgresql://backup@db1/chat --output /srv/chat-today
                  pgvault backup -d "dbname=chat" --output chat.tar --jobs 4
                  pgvault backup -d "dbname=chat" --output - | ssh vault 'cat > chat.tar'
                  pgvault backup -d "dbname=chat" --repo /backups/chat \\
                      --metrics-file /var/lib/node_exporter/pgvault.prom
                  pgvault backup -d "dbname=chat" --output msgs --table 'public.messages'

                The metrics file's folder, the repository and the output's folder are checked \
                before any work starts. If the metrics file still cannot be written at the end, \
                the archive stays complete (exit 0, "status": "complete") and the JSON line says \
                so under "warnings".

                Exit status: 0 only when the archive is complete; 2 otherwise (nothing is \
                published); 130 or 143 when interrupted by SIGINT or SIGTERM.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(name: [.short, .long], help: ArgumentHelp("Archive path to create (a name ending in .tar makes a tar file), or - for a tar on standard output.", valueName: "PATH"))
        var output: String?

        @Option(help: ArgumentHelp(
            "Repository folder: the backup is named <database>-<UTC time> inside it.",
            discussion: "The time is to the millisecond; a name another backup has gets a -N suffix. One repository per database (docs/archive-format.md).",
            valueName: "DIR"))
        var repo: String?

        @OptionGroup var s3: S3EndpointOption

        @Option(help: ArgumentHelp(
            "With --repo of a format-2 repository: its key file.",
            discussion: "Default: ~/.config/pgvault/keys/<id>.key, where repo init wrote it.",
            valueName: "FILE"))
        var keyFile: String?

        @Option(help: ArgumentHelp(
            "Archive form: directory or file (one tar file).",
            discussion: "Default: file when --output ends in .tar, else directory.",
            valueName: "directory|file"))
        var format: BackupOptions.Form?

        @Option(name: [.short, .long], parsing: .unconditional, help: "Parallel worker connections (1-64).")
        var jobs: Int = 2

        @OptionGroup var selection: TableSelectionOptions

        @Flag(help: "Only the schema, no data.")
        var schemaOnly = false

        @Flag(help: "Only the data, no schema.")
        var dataOnly = false

        @Flag(help: ArgumentHelp(
            "Into a repository: read every table, even those whose fingerprints say they are unchanged since the previous backup.",
            discussion: "By default such units are taken from the previous backup without reading them (docs/repository-format.md, \"Unchanged units\")."))
        var readUnchanged = false

        @Option(parsing: .unconditional, help: ArgumentHelp(
            "zstd level (1-19).",
            discussion: "Higher levels make smaller archives for more CPU; the default 2 is the measured best trade on a 2-core backup host (docs/benchmarks.md)."))
        var compressLevel: Int32 = 2

        @Option(help: ArgumentHelp(
            "COPY format of the data: auto (binary for every table whose column types allow it, else text) or text.",
            discussion: "Binary costs the server less on backup and restore and compresses better; text is the most portable (any PostgreSQL version, any target encoding). See docs/archive-format.md.",
            valueName: "auto|text"))
        var copyFormat: CopyFormatChoice = .auto

        @Option(parsing: .unconditional, help: ArgumentHelp("Split tables and partitions larger than this many MiB into ctid ranges.", valueName: "MIB"))
        var splitSize: Int64 = 256

        @Option(help: ArgumentHelp("How long to wait for each table lock before failing, e.g. 30s, 2min.", valueName: "DURATION"))
        var lockWaitTimeout = LockTimeout(argument: "30s")!

        @Option(help: ArgumentHelp("Folder with pg_dump and pg_restore (at least the server's version).", valueName: "DIR"))
        var pgBin: String?

        @Option(help: ArgumentHelp("Write Prometheus metrics (last success, duration, bytes, rows) to this file.", valueName: "PATH"))
        var metricsFile: String?

        @Flag(help: "Print the summary as one JSON object on one line (docs/cli.md).")
        var json = false

        @Flag(help: "No progress display.")
        var quiet = false

        /// --format, else file for an --output ending in .tar, else directory.
        var form: BackupOptions.Form {
            if let format { return format }
            return output?.hasSuffix(".tar") == true ? .file : .directory
        }

        func validate() throws {
            if (output == nil) == (repo == nil) { throw ValidationError("give exactly one of '--output PATH' and '--repo DIR'") }
            if keyFile != nil && repo == nil { throw ValidationError("'--key-file' goes with '--repo'") }
            if schemaOnly && dataOnly { throw ValidationError("'--schema-only' and '--data-only' exclude each other") }
            if jobs < 1 || jobs > 64 { throw ValidationError("'--jobs' must be between 1 and 64") }
            if format == .directory, let output, output.hasSuffix(".tar") {
                throw ValidationError("'--output \(output)' ends in .tar but '--format directory' asks for a folder; drop '--format' for a tar file, or choose a name without .tar")
            }
            if !(1...1_048_576).contains(splitSize) { throw ValidationError("'--split-size' must be between 1 and 1048576 (MiB)") }
            if !(1...19).contains(compressLevel) { throw ValidationError("'--compress-level' must be between 1 and 19") }
            if output == "-" && isatty(1) != 0 { throw ValidationError("'--output -' writes a tar to standard output; redirect it to a file or a pipe") }
        }

        func run() async throws {
            var report = CommandReport("backup", json: json, database: connection.databaseName)
            report.resultOnStandardError = output == "-"
            report.onFailure = failureMetrics(metricsFile, command: "backup", database: connection.databaseName)
            try await report.run {
                // Every output path is checked before the work starts.
                if let metricsFile { try OutputPath.checkWritableFile(metricsFile, what: "--metrics-file") }
                // With --repo, the engine names the backup after the database it reaches.
                var options = BackupOptions(conninfo: connection.dbname, output: output ?? "", form: form)
                options.repository = repo
                options.keyFile = keyFile
                options.jobs = jobs
                options.tables = selection.table
                options.excludeTables = selection.excludeTable
                options.schemaOnly = schemaOnly
                options.dataOnly = dataOnly
                options.compressionLevel = compressLevel
                options.binaryCopy = copyFormat == .auto
                options.splitBytes = splitSize << 20
                options.lockWaitTimeout = lockWaitTimeout.postgres
                options.pgBin = pgBin
                options.reuseUnchanged = !readUnchanged
                let showProgress = !quiet && isatty(2) != 0
                if showProgress { options.progress = { ProgressLine.show($0) } }
                var summary = try await cancellingOnSignals { [options] in try await BackupEngine.run(options) }
                if showProgress { ProgressLine.clear() }
                summary.warnings = writeSuccessMetrics(metricsFile, command: "backup", database: summary.database, summary: summary)
                report.result(summary) {
                    """
                    backup complete: \(summary.archive)
                      database \(summary.database), snapshot \(summary.snapshotTime) at WAL \(summary.walLSN)\(summary.standby.map { " (read from a standby: replayed to \($0.replayLSN), last replayed commit \($0.lastReplayedCommit ?? "none yet"))" } ?? "")
                      \(summary.tables) tables, \(summary.units) units\(summary.unitsUnchanged.map { $0 > 0 ? " (\($0) unchanged since the previous backup, not read again)" : "" } ?? ""), \(summary.rows) rows
                      \(Format.bytes(summary.rawBytes)) of COPY data \(summary.manifest?.packs != nil ? "stored; \(Format.bytes(summary.archiveBytes)) new in the repository, the rest already there" : "in \(Format.bytes(summary.archiveBytes))") (\(String(format: "%.1f", summary.seconds)) s)
                    """
                }
            }
        }
    }
}
