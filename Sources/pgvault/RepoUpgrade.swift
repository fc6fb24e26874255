import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand.Repo {
    struct Upgrade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upgrade",
            abstract: "Import the backups of a folder of format-1 archives into a format-2 repository.",
            discussion: """
                Every complete backup in --from (folders and .tar archives, as `pgvault list \
                --repo` shows them) is read, checked against its manifest, and stored in the \
                repository made by `pgvault repo init` as deduplicated chunks, keeping its \
                name (without .tar), its times and its manifest. Incomplete and damaged \
                backups are not imported (they are listed).

                The old archives are only read: nothing in --from is changed or removed, so \
                nothing is lost; delete them yourself once the repository is checked (pgvault \
                check --repo DIR --read-data). A backup the repository holds already is \
                skipped: running upgrade again adds nothing, and an interrupted upgrade \
                resumes where it stopped.

                Examples:
                  pgvault repo init --repo /backups/chat2 --encrypt-to age1...
                  pgvault repo upgrade --from /backups/chat --repo /backups/chat2

                Exit status: 0 upgraded; 2 a backup could not be imported (those before it \
                are); 64 usage error.
                """)

        @Option(help: ArgumentHelp("The folder of format-1 backups (left untouched).", valueName: "OLDDIR"))
        var from: String

        @Option(help: ArgumentHelp("The format-2 repository (pgvault repo init) to import into.", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Option(help: ArgumentHelp("The repository key file (default: ~/.config/pgvault/keys/<id>.key).", valueName: "FILE"))
        var keyFile: String?

        @Flag(help: "Print the result as one JSON object on one line (docs/cli.md).")
        var json = false

        func run() async throws {
            let report = CommandReport("repo upgrade", json: json)
            try await report.run {
                let from = from, repo = repo, credentials = ChunkRepository.Credentials(keyFile: keyFile)
                let showProgress = !json && isatty(2) == 1
                let result = try await cancellingOnSignals(leaving: "the upgrade did not finish; the backups imported so far are in the repository, the old archives are untouched, and running it again resumes") {
                    try await Blocking.run("pgvault-repo-upgrade") {
                        let repository = try ChunkRepository.open(path: repo, credentials: credentials)
                        return try RepositoryUpgrade.run(from: from, into: repository) { imported in
                            if showProgress { FileHandle.standardError.write(Data("  \(imported.status) \(imported.name)\n".utf8)) }
                        }
                    }
                }
                report.result(result) {
                    let imported = result.backups.filter { $0.status == "imported" }.count
                    var lines = ["upgraded \(result.from) into \(result.repository): \(imported) backups imported, \(result.backups.count - imported) already there"]
                    for b in result.backups { lines.append("  \(b.status) \(b.name) (\(b.units) units, \(b.addedBytes) bytes added)") }
                    if !result.ignored.isEmpty { lines.append("  not imported (incomplete or damaged): " + result.ignored.joined(separator: ", ")) }
                    lines.append("The old archives in \(result.from) are untouched: nothing was lost. Check the repository (pgvault check --repo \(result.repository) --read-data) before deleting them.")
                    return lines.joined(separator: "\n")
                }
            }
        }
    }
}
