import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply (or revert) the chat schema's migrations, compatible with sqlx.",
            discussion: """
                pgvault carries the chat schema's migrations (the repository's migrations/ \
                folder as it was when pgvault was built), so it migrates from any folder. \
                --source DIR uses a folder of sqlx-style files instead: <version>_<name>.up.sql \
                and <version>_<name>.down.sql. Applied versions are recorded in _sqlx_migrations \
                exactly as `sqlx migrate run` records them (same checksum, same advisory lock), \
                so either tool recognises a database migrated by the other.

                Examples:
                  pgvault migrate -d postgresql://app@db1/chat
                  pgvault migrate -d "dbname=chat" --status
                  pgvault migrate -d "dbname=chat" --down
                  pgvault migrate -d "dbname=chat" --source ./migrations

                Exit status: 0 the database is at the wanted version; 2 a migration failed \
                (it is rolled back) or the database cannot be reached.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Folder holding the migration files (default: the migrations built into pgvault).", valueName: "DIR"))
        var source: String?

        @Flag(help: "Revert the most recently applied migration instead of applying.")
        var down = false

        @Flag(help: "Only list the migrations and whether each is applied.")
        var status = false

        @Flag(help: "Print the result as one JSON object on one line (docs/cli.md).")
        var json = false

        func run() async throws {
            let report = CommandReport("migrate", json: json, database: connection.databaseName)
            try await report.run {
                let migrator = try source.map { try Migrator(directory: $0) } ?? Migrator.embedded()
                let conn = try await Blocking.run("pgvault-migrate") { [connection] in
                    try connection.connect(application: "pgvault migrate")
                }
                var result = MigrateResult()
                var lines: [String] = []
                if status {
                    let applied = Set(try await Blocking.run("pgvault-migrate", on: conn) { try Migrator.applied($0) }.map(\.version))
                    for m in migrator.migrations {
                        lines.append("\(applied.contains(m.version) ? "applied" : "pending") \(m.version) \(m.description)")
                    }
                    result.applied = migrator.migrations.filter { applied.contains($0.version) }.map { String($0.version) }
                    result.pending = migrator.migrations.filter { !applied.contains($0.version) }.map { String($0.version) }
                } else if down {
                    let reverted = try await Blocking.run("pgvault-migrate", on: conn) { try migrator.revertLast($0) }
                    lines.append(reverted.map { "reverted \($0.version) \($0.description)" } ?? "nothing to revert")
                    result.reverted = reverted.map { [String($0.version)] } ?? []
                } else {
                    let quiet = json
                    let ran = try await Blocking.run("pgvault-migrate", on: conn) {
                        try migrator.run($0) { m in
                            if !quiet { print("applying \(m.version) \(m.description)") }
                        }
                    }
                    lines.append(ran.isEmpty ? "database is up to date" : "applied \(ran.count) migration(s)")
                    result.applied = ran.map { String($0.version) }
                }
                report.result(result) { lines.joined(separator: "\n") }
            }
        }
    }

    /// migrate's JSON: the versions it found applied and pending (--status),
    /// applied, or reverted.
    struct MigrateResult: Encodable {
        var status = "ok"
        var applied: [String]?
        var pending: [String]?
        var reverted: [String]?
    }
}
