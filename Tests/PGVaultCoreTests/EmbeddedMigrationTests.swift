import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// The migrations built into pgvault (Migrations+Embedded.swift) and `pgvault
/// migrate` run away from the repository, as an installed program runs.
@Suite("built-in migrations")
struct EmbeddedMigrationTests {
    @Test("the built-in migrations are migrations/ byte for byte (else run scripts/embed-migrations.py)")
    func upToDate() throws {
        let folder = try MigrationSource.load(directory: RepoPaths.migrations)
        let embedded = try MigrationSource.embedded()
        // Named differences, not a dump of every migration's SQL.
        let built = Dictionary(uniqueKeysWithValues: embedded.map { ($0.fileName, $0) })
        let stale = folder.filter { built[$0.fileName] != $0 }.map(\.fileName)
        let gone = Set(built.keys).subtracting(folder.map(\.fileName)).sorted()
        let hint = "Migrations+Embedded.swift is out of date with migrations/: run scripts/embed-migrations.py"
        #expect(stale.isEmpty && gone.isEmpty, "\(hint) (changed or new: \(stale); removed: \(gone))")
        #expect(embedded.count == folder.count)
    }

    @Test("pgvault migrate from a folder without migrations/ applies the built-in ones; --status and --down work; --source still overrides")
    func migrateFromElsewhere() throws {
        let binary = try Shell.pgvault()
        let elsewhere = try TestScratch.Folder("migrate-cwd")
        defer { elsewhere.remove() }
        #expect(elsewhere.names.isEmpty)
        func pgvault(_ args: [String]) throws -> Shell.Output {
            let out = try Shell.capture([binary] + args, workingDirectory: elsewhere.path)
            #expect(out.status == 0, "pgvault \(args.joined(separator: " ")) exited \(out.status): \(out.stderr)")
            return out
        }
        let all = try MigrationSource.load(directory: RepoPaths.migrations)
        let db = try TestServers.database(prefix: "embedded")

        let applied = try pgvault(["migrate", "-d", db.conninfo])
        #expect(applied.stdout.contains("applied \(all.count) migration(s)"), "\(applied.stdout)")
        #expect(try Migrator.applied(try db.connect()).map(\.checksum) == all.map(\.checksum))

        let status = try pgvault(["migrate", "-d", db.conninfo, "--status"])
        #expect(status.stdout.split(separator: "\n").filter { $0.hasPrefix("applied ") }.count == all.count, "\(status.stdout)")

        let down = try pgvault(["migrate", "-d", db.conninfo, "--down"])
        let last = try #require(all.last)
        #expect(down.stdout.contains("reverted \(last.version)"), "\(down.stdout)")
        #expect(try Migrator.applied(try db.connect()).count == all.count - 1)

        // --source: a folder with only the first two migrations, on a fresh database.
        let two = try TestScratch.Folder("migrate-source")
        defer { two.remove() }
        for m in all.prefix(2) {
            for name in [m.fileName, m.fileName.replacingOccurrences(of: ".up.sql", with: ".down.sql")] {
                try FileManager.default.copyItem(atPath: RepoPaths.migrations + "/" + name, toPath: two[name])
            }
        }
        let other = try db.sibling(prefix: "embedded")
        let partial = try pgvault(["migrate", "-d", other.conninfo, "--source", two.path])
        #expect(partial.stdout.contains("applied 2 migration(s)"), "\(partial.stdout)")
        #expect(try Migrator.applied(try other.connect()).map(\.version) == all.prefix(2).map(\.version))
    }
}
