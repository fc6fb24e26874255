import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Check a format-2 repository: its structure, and with --read-data every chunk.",
            discussion: """
                Without --read-data: every index object and catalog opens with the \
                repository key; every pack is present at its recorded size; every chunk a \
                backup refers to is indexed; with --identity, every manifest is \
                authenticated and agrees with the index. Reads only small objects.

                --read-data also reads every pack whole, decrypts it (--identity), and \
                decompresses and hashes every chunk to its id, over --jobs threads.

                Output as verify's: a table of findings, failures first, or with --json one \
                JSON object on one line.

                Examples:
                  pgvault check --repo /backups/chat
                  pgvault check --repo /backups/chat --read-data \\
                      --identity /secure/chat-backups.key --json

                Exit status: 0 all checks passed; 1 a check failed; 2 the check could not \
                run; 64 usage error.
                """)

        @Option(help: ArgumentHelp("The format-2 repository.", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Flag(help: "Read, decrypt, decompress and hash every chunk.")
        var readData = false

        @Option(help: ArgumentHelp("An age identity file that decrypts the repository (needed by --read-data when encrypted).", valueName: "FILE"))
        var identity: String?

        @Option(help: ArgumentHelp("The repository key file (default: ~/.config/pgvault/keys/<id>.key; not needed with --identity).", valueName: "FILE"))
        var keyFile: String?

        @Option(name: [.short, .long], parsing: .unconditional, help: "Parallel threads for --read-data (1-64).")
        var jobs: Int = 2

        @Flag(help: "Print the report as one JSON object on one line (docs/cli.md).")
        var json = false

        @Flag(name: .shortAndLong, help: "List the passing checks too.")
        var verbose = false

        func validate() throws {
            if jobs < 1 || jobs > 64 { throw ValidationError("'--jobs' must be between 1 and 64") }
        }

        func run() async throws {
            let report = CommandReport("check", json: json)
            try await report.run {
                let repo = repo, credentials = ChunkRepository.Credentials(keyFile: keyFile, identityFile: identity)
                let repository = try await Blocking.run("pgvault-check-open") { try ChunkRepository.open(path: repo, credentials: credentials) }
                let progress: (@Sendable (String) -> Void)? = isatty(2) == 1 ? Verify.showProgress : nil
                let checked = try await cancellingOnSignals(leaving: "the check did not finish; nothing was judged") {
                    try await RepositoryCheck.run(repository, readData: readData, jobs: jobs, progress: progress)
                }
                if progress != nil { Verify.clearProgress() }
                if json {
                    print(try checked.json(), terminator: "")
                } else {
                    print(checked.table(verbose: verbose, width: Verify.terminalWidth), terminator: "")
                }
                if !checked.ok { throw ExitCode(1) }
            }
        }
    }
}
