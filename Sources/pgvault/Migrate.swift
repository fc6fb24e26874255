import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply (or revert) the chat schema's migrations, compatible with sqlx.",
            discussion: """
                Migrations are sqlx-style files in --source: <version>_<name>.up.sql and \
                <version>_<name>.down.sql. Applied versions are recorded in _sqlx_migrations \
                exactly as `sqlx migrate run` records them (same checksum, same advisory lock), \
                so either tool recognises a database migrated by the other.

                Examples:
                  pgvault migrate -d postgresql://app@db1/chat
                  pgvault migrate -d "dbname=chat" --status
                  pgvault migrate -d "dbname=chat" --down

                Exit status: 0 the database is at the wanted version; 2 a migration failed \
                (it is rolled back) or the database cannot be reached.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Folder holding the migration files.", valueName: "DIR"))
        var source: String = "migrations"

        @Flag(help: "Revert the most recently applied migration instead of applying.")
        var down = false

        @Flag(help: "Only list the migrations and whether each is applied.")
        var status = false

        @Flag(help: "Print the result as JSON on standard output.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let migrator = try Migrator(directory: source)
                let conn = try connection.connect(application: "pgvault migrate")
                let result: [String: [String]]
                if status {
                    let applied = Set(try Migrator.applied(conn).map(\.version))
                    for m in migrator.migrations where !json {
                        print("\(applied.contains(m.version) ? "applied" : "pending") \(m.version) \(m.description)")
                    }
                    result = [
                        "applied": migrator.migrations.filter { applied.contains($0.version) }.map { String($0.version) },
                        "pending": migrator.migrations.filter { !applied.contains($0.version) }.map { String($0.version) },
                    ]
                } else if down {
                    let reverted = try migrator.revertLast(conn)
                    if !json {
                        print(reverted.map { "reverted \($0.version) \($0.description)" } ?? "nothing to revert")
                    }
                    result = ["reverted": reverted.map { [String($0.version)] } ?? []]
                } else {
                    let ran = try migrator.run(conn) { m in
                        if !json { print("applying \(m.version) \(m.description)") }
                    }
                    if !json {
                        print(ran.isEmpty ? "database is up to date" : "applied \(ran.count) migration(s)")
                    }
                    result = ["applied": ran.map { String($0.version) }]
                }
                if json {
                    let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                }
            }
        }
    }
}
