import ArgumentParser
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
            """,
        version: PGVault.version,
        subcommands: [
            Backup.self, ListBackups.self, Prune.self, Restore.self, Verify.self,
            ArchivePartitions.self, RestorePartitions.self,
            WalStatus.self,
            ExportUser.self, ExportWorker.self,
            Migrate.self, Generate.self,
        ]
    )
}
