import Foundation
@testable import PGVaultCore
import TestSupport
import Testing

private let installedPGVault = ProcessInfo.processInfo.environment["PGVAULT_INSTALLED_PGVAULT"]

/// The installed program, as an operator runs it: `PGVAULT_INSTALLED_PGVAULT`
/// names the binary of an installed package (scripts/ci-package.sh installs the
/// .deb of scripts/package-deb.sh into a clean folder and sets it). Without it
/// these tests are skipped: a development build is what the other tests run.
@Suite("installed program", .enabled(if: installedPGVault != nil, "set PGVAULT_INSTALLED_PGVAULT to an installed pgvault"))
struct InstalledProgramTests {
    static let binary = installedPGVault

    /// Runs the installed pgvault in /tmp, away from any checkout.
    func pgvault(_ args: [String]) throws -> Shell.Output {
        let binary = try #require(Self.binary)
        let out = try Shell.capture([binary] + args, workingDirectory: "/tmp")
        #expect(out.status == 0, "pgvault \(args.joined(separator: " ")) exited \(out.status): \(out.stderr)")
        return out
    }

    @Test("--version, migrate from /tmp, generate, backup and restore with the installed binary: table digests equal")
    func roundTrip() throws {
        #expect(try pgvault(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == PGVault.version)
        let source = try TestServers.database(prefix: "installed")
        let migrated = try pgvault(["migrate", "-d", source.conninfo])
        let count = try MigrationSource.embedded().count
        #expect(migrated.stdout.contains("applied \(count) migration(s)"), "\(migrated.stdout)")
        _ = try pgvault(["generate", "-d", source.conninfo, "--scale", "tiny", "--jobs", "1"])
        let folder = try TestScratch.Folder("installed")
        defer { folder.remove() }
        _ = try pgvault(["backup", "-d", source.conninfo, "--output", folder["archive"], "--quiet"])
        let target = try source.sibling(prefix: "installed")
        _ = try pgvault(["restore", folder["archive"], "-d", target.conninfo, "--quiet"])
        try RestoreFixtures.expectSameTables(try source.connect(), try target.connect())
    }
}
