import AgeFormat
import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    /// `pgvault repo ...`: the format-2 repository itself.
    struct Repo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repo",
            abstract: "Create and manage an encrypted, deduplicating repository (format 2).",
            discussion: "docs/repository-format.md describes the format; docs/runbooks/repository.md how to run one.",
            subcommands: [Init.self, Export.self, Upgrade.self, Unlock.self])
    }
}

extension PGVaultCommand.Repo {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a format-2 repository: chunks deduplicated, compressed and encrypted to age recipients.",
            discussion: """
                Backups into it (pgvault backup --repo DIR) store only the chunks the \
                repository lacks. Packs and manifests are age files encrypted to the \
                recipients (public keys, age1...); reading them back takes an identity \
                (--identity on restore, verify, check --read-data). Encryption is the default: \
                a repository in the clear needs --no-encryption.

                init also makes the repository key (32 random bytes): the backup host keeps it \
                in the key file (owner-only; default ~/.config/pgvault/keys/<id>.key, or \
                --key-file). With it the host deduplicates, lists and prunes, and every object \
                it writes is authenticated, but it cannot read a backup. A copy of the key is \
                stored in the repository encrypted to the recipients, so the identity alone \
                restores.

                Keep the identity OFFLINE, not on the backup host: whoever has it reads every \
                backup, and without it no backup can ever be read. Make it elsewhere with \
                age-keygen -o FILE, which prints its public key (the recipient); \
                docs/runbooks/repository.md walks through it.

                Examples:
                  pgvault repo init --repo /backups/chat --encrypt-to "$RECIPIENT"
                  pgvault repo init --repo /backups/chat \\
                      --recipients-file /etc/pgvault/recipients.txt

                Exit status: 0 created; 2 it could not be created; 64 usage error.
                """)

        @Option(help: ArgumentHelp("The folder to create the repository in (missing or empty).", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Option(name: .customLong("encrypt-to"), help: ArgumentHelp("An age recipient (public key, age1...) to encrypt to (repeatable).", valueName: "RECIPIENT"))
        var recipients: [String] = []

        @Option(help: ArgumentHelp("A file of age recipients, one per line (# comments allowed).", valueName: "FILE"))
        var recipientsFile: String?

        @Flag(help: "Store backups in the clear (the key still authenticates them).")
        var noEncryption = false

        @Option(help: ArgumentHelp("Where to write the repository key (default: ~/.config/pgvault/keys/<id>.key).", valueName: "FILE"))
        var keyFile: String?

        @Flag(help: "Print the result as one JSON object on one line (docs/cli.md).")
        var json = false

        func validate() throws {
            if noEncryption && (!recipients.isEmpty || recipientsFile != nil) {
                throw ValidationError("--no-encryption and --encrypt-to/--recipients-file contradict each other; give one")
            }
            if !noEncryption && recipients.isEmpty && recipientsFile == nil {
                throw ValidationError("give --encrypt-to age1... (or --recipients-file FILE): the repository encrypts to them; --no-encryption stores backups in the clear")
            }
        }

        struct Created: Encodable {
            var status = "created"
            var repository: String
            var id: String
            var encrypted: Bool
            var recipients: [String]
            var keyFile: String
            var keyFingerprint: String
        }

        func run() async throws {
            let report = CommandReport("repo init", json: json)
            try await report.run {
                let parsed = try parseRecipients()
                let repo = repo, keyFile = keyFile, encrypted = !noEncryption
                let (repository, keyPath) = try await Blocking.run("pgvault-repo-init") {
                    let location = RepositoryLocation(repo)
                    if case .folder = location {
                        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    }
                    return try ChunkRepository.create(store: try location.store(), recipients: parsed, encrypted: encrypted, keyFile: keyFile)
                }
                let created = Created(
                    repository: repo, id: repository.config.id, encrypted: encrypted, recipients: repository.config.recipients,
                    keyFile: keyPath, keyFingerprint: repository.fingerprint)
                report.result(created) {
                    var lines = ["created repository \(repo) (id \(created.id), format 2)"]
                    if encrypted {
                        lines += ["  encrypted to: " + created.recipients.joined(separator: ", ")]
                        lines += ["  reading a backup (restore, verify, check --read-data) needs the identity of one of these recipients: --identity FILE.",
                                  "  Keep that identity OFFLINE, not on this host. Whoever holds it can read every backup; if it is lost, no backup can ever be read."]
                    } else {
                        lines += ["  NOT encrypted (--no-encryption): anyone who can read the folder can read the backups."]
                    }
                    lines += ["  repository key: \(keyPath) (fingerprint \(created.keyFingerprint)); the backup host needs it to write, list and prune.",
                              encrypted ? "  Keep it owner-only; a copy is in the repository, encrypted to the recipients."
                                  : "  Keep it owner-only, and a copy offline: reading a backup needs it."]
                    return lines.joined(separator: "\n")
                }
            }
        }

        func parseRecipients() throws -> [AgeRecipient] {
            var texts = recipients
            if let recipientsFile {
                guard let data = FileManager.default.contents(atPath: recipientsFile) else {
                    throw PGVaultError.usage("cannot read the recipients file '\(recipientsFile)'; check the path")
                }
                texts += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
            }
            return try texts.map { text in
                guard let recipient = AgeRecipient(text) else {
                    throw PGVaultError.usage("'\(text)' is not an age recipient: give a public key as age-keygen prints it (age1...)")
                }
                return recipient
            }
        }
    }
}

extension PGVaultCommand.Repo {
    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unlock",
            abstract: "Remove the locks of runs that are gone (a backup killed on another host, say).",
            discussion: """
                Backups, restores and checks hold a shared lock on a repository, prune an \
                exclusive one (docs/storage.md, "Locks"). A lock whose process is gone on this \
                host, or that has not been refreshed for 30 minutes, is stale and removed by \
                the next run by itself. unlock removes the stale ones at once; with --all it \
                removes every lock: only when no pgvault is using the repository.

                Examples:
                  pgvault repo unlock --repo /backups/chat
                  pgvault repo unlock --repo /backups/chat --all

                Exit status: 0 done; 2 the repository could not be read; 64 usage error.
                """)

        @Option(help: ArgumentHelp("The format-2 repository.", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Flag(help: "Remove every lock, not only stale ones (no pgvault may be running on the repository).")
        var all = false

        @Flag(help: "Print the result as one JSON object on one line (docs/cli.md).")
        var json = false

        struct Unlocked: Encodable {
            var status = "ok"
            var repository: String
            var removed: [String]
        }

        func run() async throws {
            let report = CommandReport("repo unlock", json: json)
            try await report.run {
                let repo = repo, all = all
                let removed = try await Blocking.run("pgvault-repo-unlock") { () throws -> [String] in
                    guard ChunkRepository.exists(path: repo) else {
                        throw PGVaultError.archive("'\(repo)' is not a format-2 repository (it has no config); check --repo", wholeArchive: true)
                    }
                    let store = LocalFolderStore(root: repo)
                    return all ? try RepositoryLock.removeAll(store: store).map(\.description)
                        : try RepositoryLock.unlockStale(store: store).map(\.description)
                }
                report.result(Unlocked(repository: repo, removed: removed)) {
                    removed.isEmpty ? "no \(all ? "" : "stale ")locks in \(repo)" : removed.map { "removed \($0)" }.joined(separator: "\n")
                }
            }
        }
    }
}
