import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand.Repo {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write a backup of a format-2 repository out as a standalone archive (format 1).",
            discussion: """
                The archive is what `pgvault backup --output` writes: zstd members and a \
                manifest.json, with no chunks or packs, readable by restore and verify without \
                the repository. Every chunk is checked against its id as it is read; the \
                manifest is written last, and the archive appears at FILE.tar or DIR only once \
                it is whole. A tar when the output ends in .tar, else a folder. Owner-only.

                Reading an encrypted repository's backup needs --identity.

                Examples:
                  pgvault repo export --repo /backups/chat --backup latest --output /tmp/chat.tar
                  pgvault repo export --repo /backups/chat --backup chat-20260101T000000.000Z \\
                      --identity /secure/chat-backups.key --output /mnt/usb/chat-jan

                Exit status: 0 exported; 2 it could not be exported (nothing is left at the \
                output); 64 usage error.
                """)

        @Option(help: ArgumentHelp("The format-2 repository.", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Option(help: ArgumentHelp("The backup's name (pgvault list), or latest.", valueName: "NAME"))
        var backup: String = "latest"

        @Option(help: ArgumentHelp("The archive to write: FILE.tar, or a new folder.", valueName: "FILE.tar|DIR"))
        var output: String

        @Option(help: ArgumentHelp("An age identity file that decrypts the repository's backups.", valueName: "FILE"))
        var identity: String?

        @Option(help: ArgumentHelp("The repository key file (default: ~/.config/pgvault/keys/<id>.key; not needed with --identity).", valueName: "FILE"))
        var keyFile: String?

        @Flag(help: "Print the result as one JSON object on one line (docs/cli.md).")
        var json = false

        func run() async throws {
            let report = CommandReport("repo export", json: json)
            try await report.run {
                let repo = repo, backup = backup, output = output
                let credentials = ChunkRepository.Credentials(keyFile: keyFile, identityFile: identity)
                let result = try await cancellingOnSignals {
                    try await Blocking.run("pgvault-repo-export") {
                        let opened = try RepositoryBackup.open(backup, in: try ChunkRepository.open(path: repo, credentials: credentials), command: "repo export")
                        defer { opened.release() }
                        return try RepositoryExport.run(opened, output: output)
                    }
                }
                report.result(result) {
                    "exported backup \(result.backup) of \(result.repository) to \(result.output) (\(result.form), \(result.members) members, \(result.bytes) bytes); `pgvault verify \(result.output)` checks it"
                }
            }
        }
    }
}
