import ArgumentParser
import Foundation
import PGVaultCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension PGVaultCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Prove what an archive holds and what a restore produced; find orphan rows.",
            discussion: """
                pgvault verify ARCHIVE  (offline, no database)
                  manifest.json parses and has a known format version; every member
                  is there and none is extra; sizes and SHA-256 match; every zstd
                  stream decodes to its end; each unit's decoded rows equal the
                  manifest's count and row digest.
                pgvault verify ARCHIVE --dbname CONN  (after a restore)
                  each table's row count and order-independent content digest on
                  CONN equal the archive's (partitions are matched by their bounds,
                  whatever their names; one missing on CONN is named), then the
                  foreign-key check below.
                pgvault verify --dbname CONN
                  every foreign key (NOT VALID ones too) and every relation of
                  --relations FILE has no orphan rows: one anti-join each.

                Checks run in parallel over --jobs threads or connections. A failure
                names the member or table, the constraint and a few sample keys.

                Relations file (--relations FILE): relations the schema does not
                declare as constraints, checked like foreign keys.
                \(DeclaredRelation.fileFormat.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

                Output: a table, failures first (--verbose lists passing checks
                too); with --json the report on one line: {"ok", "durationSeconds",
                "findings": [{"check", "status", "object", "constraint", "detail",
                "samples"}]}. Progress goes to standard error on a terminal.

                Exit status: 0 all checks passed; 1 a check failed; 2 verification
                could not run (no such archive, no connection, unreadable relations
                file); 130 or 143 interrupted; 64 usage error.

                Examples:
                  pgvault verify /backups/chat-20250101T000000Z
                  pgvault verify chat.tar --json | jq '.findings[] | select(.status=="failed")'
                  pgvault verify --repo /backups/chat --backup latest \\
                      --identity /secure/chat-backups.key
                  pgvault verify /backups/chat-20250101T000000Z -d "dbname=chat2" -j 8
                  pgvault verify -d "dbname=chat" --relations relations.txt
                """)

        @Argument(help: ArgumentHelp("Archive to check: a directory or a tar file written by pgvault backup, or - for a tar on standard input (copied to a temporary file under $TMPDIR first, as restore - does).", valueName: "ARCHIVE"))
        var archive: String?

        @OptionGroup var repository: RepositoryBackupOptions

        @OptionGroup var connection: ConnectionOptions

        @Option(name: [.short, .long], parsing: .unconditional, help: "Parallel threads (offline) or connections (with --dbname).")
        var jobs: Int = 2

        @Option(help: ArgumentHelp("File of relations to check like foreign keys (format above).", valueName: "FILE"))
        var relations: String?

        @Option(name: .customLong("unit"), parsing: .singleValue, help: ArgumentHelp(
            "With ARCHIVE and --dbname: compare only the tables holding this unit id (repeatable).", valueName: "ID"))
        var units: [String] = []

        @Flag(help: "Print the report as one JSON object on one line (docs/cli.md).")
        var json = false

        @Flag(name: .shortAndLong, help: "List the passing checks too.")
        var verbose = false

        func validate() throws {
            try repository.validate(archive: archive, required: false)
            if archive == nil && repository.repo == nil && connection.dbname.isEmpty {
                throw ValidationError("give an ARCHIVE (or '--repo DIR'), '--dbname CONN', or both")
            }
            if jobs < 1 || jobs > 64 { throw ValidationError("'--jobs' must be between 1 and 64") }
            if archive == "-" && isatty(0) != 0 {
                throw ValidationError("ARCHIVE '-' reads a tar from standard input, which is a terminal; pipe one in (pgvault backup -o - | pgvault verify -) or give the archive's path")
            }
            if !units.isEmpty && ((archive == nil && repository.repo == nil) || connection.dbname.isEmpty) {
                throw ValidationError("'--unit' needs both ARCHIVE and '--dbname'")
            }
            if relations != nil && connection.dbname.isEmpty {
                throw ValidationError("'--relations' needs '--dbname'")
            }
        }

        func run() async throws {
            let progress: (@Sendable (String) -> Void)? = isatty(2) == 1 ? Self.showProgress : nil
            let report = CommandReport("verify", json: json, database: connection.dbname.isEmpty ? nil : connection.databaseName)
            try await report.run {
                let extra = try relations.map(DeclaredRelation.load(path:)) ?? []
                let archive = archive, conninfo = connection.dbname, jobs = jobs, units = units
                let backup = try await repository.open(command: "verify")
                defer { backup?.release() }
                let verified = try await cancellingOnSignals(leaving: "the verification did not finish; nothing was judged") {
                    let spool = archive == "-" ? try await ArchiveSpool.standardInput() : nil
                    defer { withExtendedLifetime(spool) {} }
                    let location = backup.map { ArchiveLocation.backup($0) } ?? (spool?.path ?? archive).map { .path($0) }
                    switch (location, conninfo.isEmpty) {
                    case (let location?, true):
                        return try await Verifier.checkArchive(location, jobs: jobs, progress: progress)
                    case (let location?, false):
                        return try await Verifier.checkRestored(
                            archive: location, conninfo: conninfo, jobs: jobs,
                            units: units.isEmpty ? nil : Set(units), extraRelations: extra, progress: progress)
                    default:
                        return try await Verifier.checkForeignKeys(
                            conninfo: conninfo, jobs: jobs, extraRelations: extra, progress: progress)
                    }
                }
                if progress != nil { Self.clearProgress() }
                if json {
                    print(try verified.json(), terminator: "")
                } else {
                    print(verified.table(verbose: verbose, width: Self.terminalWidth), terminator: "")
                }
                if !verified.ok { throw ExitCode(1) }
            }
        }

        /// The terminal's width when standard output is one (details are cut to
        /// fit); nil otherwise (nothing is cut in a log or a pipe).
        static var terminalWidth: Int? {
            var size = winsize()
            guard isatty(1) == 1, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 60 else { return nil }
            return Int(size.ws_col)
        }

        @Sendable static func showProgress(_ line: String) {
            let shown = line.count > 100 ? String(line.prefix(99)) + "…" : line
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + shown).utf8))
        }

        static func clearProgress() {
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        }
    }
}
