import ArgumentParser
import CMalloc
import Foundation
import PGVaultCore

@main
struct PGVaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgvault",
        abstract: "Backup, restore, verification and per-user export for PostgreSQL.",
        discussion: """
            Connection strings: --dbname/-d takes what psql and pg_dump take, a conninfo \
            string ("host=db1 dbname=chat user=backup") or a URI \
            (postgresql://backup@db1/chat). Anything not given comes from the PG* \
            environment variables and ~/.pgpass; pgvault never prints a password.

            Conventions shared by every command (output, JSON, exit status): docs/cli.md.
            """,
        version: PGVault.version,
        subcommands: [
            Repo.self, Backup.self, ListBackups.self, Prune.self, Check.self, Restore.self, Verify.self, Drill.self,
            ArchivePartitions.self, RestorePartitions.self,
            WalStatus.self,
            ExportUser.self, ExportWorker.self,
            Migrate.self, Generate.self,
        ]
    )

    /// ArgumentParser's own entry point, except that a usage error carries the
    /// same prefix as every other error (`pgvault <command>: error: ...`, docs/cli.md).
    static func main() async {
        Self.boundHeap()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            // An ExitCode was reported already (CommandReport); 64 then is a
            // usage error found at run time, not the parser's to print.
            guard code == .validationFailure, !(error is ExitCode) else { exit(withError: error) }
            let text = fullMessage(for: error)
            let body = text.hasPrefix("Error: ") ? String(text.dropFirst("Error: ".count)) : text
            note("\(prefix): error: " + body)
            exit(withError: ExitCode(code.rawValue))
        }
    }

    /// Buffers of 256 KiB and more (COPY buffers, chunks, frames) get pages
    /// of their own and give them back when freed. glibc's default raises
    /// that threshold to the largest block freed so far, after which such
    /// buffers come from the heap and their memory stays with the process:
    /// measured, it is 12–13 MiB of peak RSS of a default-scale backup
    /// (docs/benchmarks.md, "Repository format 2").
    ///
    /// Two arenas, not glibc's eight per core: every worker, read-ahead and
    /// loader thread otherwise gets an arena of its own, and what each frees
    /// stays in it. Measured on a default-scale restore from a repository
    /// (PostgreSQL 18, --jobs 2): 64 MB peak RSS with two, 73 MB without.
    static func boundHeap() {
        _ = mallopt(M_MMAP_THRESHOLD, 256 * 1024)
        _ = mallopt(M_ARENA_MAX, 2)
    }

    /// What messages start with: `pgvault <command>` (docs/cli.md), the
    /// subcommand as named on the command line (`pgvault repo init` for a
    /// nested one).
    static var prefix: String {
        var words = ["pgvault"]
        var commands = configuration.subcommands
        for argument in CommandLine.arguments.dropFirst() {
            guard let command = commands.first(where: { $0._commandName == argument }) else { break }
            words.append(argument)
            commands = command.configuration.subcommands
        }
        return words.joined(separator: " ")
    }
}
