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
            subcommands: [Init.self, Export.self, Upgrade.self])
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
                backup, and without it no backup can ever be read.

                Examples:
                  age-keygen -o /secure/offline/chat-backups.key   # prints the public key
                  pgvault repo init --repo /backups/chat \\
                      --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
                  pgvault repo init --repo /backups/chat --recipients-file /etc/pgvault/recipients.txt

                Exit status: 0 created; 2 it could not be created; 64 usage error.
                """)

        @Option(help: ArgumentHelp("The folder to create the repository in (missing or empty).", valueName: "DIR"))
        var repo: String

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
                    try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    return try ChunkRepository.create(store: LocalFolderStore(root: repo), recipients: parsed, encrypted: encrypted, keyFile: keyFile)
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
