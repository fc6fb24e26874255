import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a retention policy to a backup repository.",
            discussion: """
                Keeps the newest complete backup of each of the last N days, ISO weeks and \
                months (UTC) that have one, and always the newest complete backup. Incomplete \
                backups are left alone, and so is anything that is not a backup pgvault wrote \
                (a nested repository, cold/, someone else's folder): only backups whose \
                manifest reads are ever deleted. Try it with --dry-run first.

                A format-2 repository also loses the packs no remaining backup uses. Packs \
                still used but mostly garbage are reported; with --identity (where the \
                identity is) prune copies their live chunks into new packs and deletes them.

                Examples:
                  pgvault prune --repo /backups/chat --keep-daily 7 --keep-weekly 4 \\
                      --keep-monthly 12 --dry-run
                  pgvault prune --repo /backups/chat --keep-daily 7 --json
                  pgvault prune --repo /backups/chat-vault --keep-daily 7 \\
                      --identity /srv/offline/chat-backups.key

                Exit status: 0 pruned (or nothing to prune); 2 the repository cannot be \
                read or a backup could not be deleted.
                """)

        @Option(help: ArgumentHelp("Repository folder.", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Option(parsing: .unconditional, help: "Daily backups to keep.") var keepDaily: Int = 7
        @Option(parsing: .unconditional, help: "Weekly backups to keep.") var keepWeekly: Int = 4
        @Option(parsing: .unconditional, help: "Monthly backups to keep.") var keepMonthly: Int = 12

        @Option(help: ArgumentHelp("A format-2 repository's key file (default: ~/.config/pgvault/keys/<id>.key).", valueName: "FILE"))
        var keyFile: String?

        @Option(help: ArgumentHelp(
            "A format-2 repository's age identity: with it prune also repacks the packs that are mostly garbage (an encrypted repository's packs are read only with it).",
            valueName: "FILE"))
        var identity: String?

        @Option(help: ArgumentHelp("Repack a format-2 repository's pack when at least this percent of it is garbage (1-100).", valueName: "PERCENT"))
        var repackThreshold: Int = RepositoryPrune.defaultRepackThreshold

        @Flag(help: "Only show what would be deleted.")
        var dryRun = false

        @Flag(help: "Print one JSON object on one line: the repository and each decision.")
        var json = false

        func validate() throws {
            for (name, value) in [("--keep-daily", keepDaily), ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly)] where value < 0 {
                throw ValidationError("'\(name)' cannot be negative; give 0 or more (the newest complete backup is always kept)")
            }
            guard (1...100).contains(repackThreshold) else {
                throw ValidationError("'--repack-threshold' must be a percentage from 1 to 100, not \(repackThreshold)")
            }
        }

        func run() async throws {
            let report = CommandReport("prune", json: json)
            try await report.run {
                let policy = Repository.Policy(daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly)
                if ChunkRepository.exists(path: repo) { return try await pruneFormat2(report, policy: policy) }
                if identity != nil || keyFile != nil {
                    throw PGVaultError.usage("'\(repo)' is a repository of archives, which has no key and no packs: '--identity' and '--key-file' go with a format-2 repository (`pgvault repo init`)")
                }
                let decisions = try Repository.existing(repo).prune(policy: policy, dryRun: dryRun)
                report.result(ListResult(repository: repo, items: decisions, key: "decisions")) {
                    guard !decisions.isEmpty else { return "no complete backups in \(repo)" }
                    return decisions.map { d in
                        let verb = d.keep ? "keep  " : (dryRun ? "would delete" : "deleted")
                        return "\(verb) \(d.name)\(d.reasons.isEmpty ? "" : " (" + d.reasons.joined(separator: ", ") + ")")"
                    }.joined(separator: "\n")
                }
            }
        }

        /// A format-2 repository: the policy, then garbage collection.
        func pruneFormat2(_ report: CommandReport, policy: Repository.Policy) async throws {
            let repo = repo, dryRun = dryRun, threshold = repackThreshold
            let credentials = ChunkRepository.Credentials(keyFile: keyFile, identityFile: identity)
            let result = try await cancellingOnSignals(leaving: "the prune stopped part way; what it deleted is gone, the rest is whole: run it again") {
                try await Blocking.run("pgvault-prune") {
                    try RepositoryPrune.run(
                        try ChunkRepository.open(path: repo, credentials: credentials), policy: policy, dryRun: dryRun, repackThreshold: threshold)
                }
            }
            report.result(PruneFormat2Result(repository: repo, result: result)) {
                var lines = result.decisions.map { d in
                    let verb = d.keep ? "keep  " : (dryRun ? "would delete" : "deleted")
                    return "\(verb) \(d.name)\(d.reasons.isEmpty ? "" : " (" + d.reasons.joined(separator: ", ") + ")")"
                }
                if result.decisions.isEmpty { lines.append("no complete backups in \(repo)") }
                for name in result.unfinished { lines.append("\(dryRun ? "would remove" : "removed") unfinished backup \(name)") }
                lines.append("\(dryRun ? "would delete" : "deleted") \(result.packsDeleted) packs no backup refers to (\(Format.bytes(result.bytesFreed)))")
                if let aborted = result.uploadsAborted, aborted > 0 {
                    lines.append("aborted \(aborted) unfinished uploads that failed backups left")
                }
                if result.packsWithGarbage > 0 {
                    lines.append("\(result.packsWithGarbage) packs still in use hold \(Format.bytes(result.garbageBytesKept)) no backup refers to; \(result.packsToRepack) of them are at least \(result.repackThreshold) % garbage")
                }
                if let repack = result.repack {
                    lines.append("repacked \(repack.packsRepacked) packs (\(Format.bytes(repack.bytesFreed))) into \(repack.packsWritten) (\(Format.bytes(repack.bytesWritten))): \(repack.chunksCopied) chunks copied, \(repack.manifestsRewritten) manifests rewritten")
                } else if result.packsToRepack > 0 {
                    lines.append(dryRun ? "would repack \(result.packsToRepack) packs" : "not repacked: \(result.repackSkipped ?? "")")
                }
                return lines.joined(separator: "\n")
            }
        }
    }
}

/// `prune --json` of a format-2 repository.
struct PruneFormat2Result: Encodable {
    var status = "ok"
    var repository: String
    var result: RepositoryPrune.Result

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: JSONKey.self)
        try container.encode(status, forKey: .init("status"))
        try container.encode(repository, forKey: .init("repository"))
        try container.encode(result.decisions, forKey: .init("decisions"))
        try container.encode(result.unfinished, forKey: .init("unfinished"))
        try container.encode(result.packsDeleted, forKey: .init("packsDeleted"))
        try container.encode(result.bytesFreed, forKey: .init("bytesFreed"))
        try container.encodeIfPresent(result.uploadsAborted, forKey: .init("uploadsAborted"))
        try container.encode(result.packsWithGarbage, forKey: .init("packsWithGarbage"))
        try container.encode(result.garbageBytesKept, forKey: .init("garbageBytesKept"))
        try container.encode(result.packsToRepack, forKey: .init("packsToRepack"))
        try container.encode(result.repackThreshold, forKey: .init("repackThreshold"))
        try container.encodeIfPresent(result.repack, forKey: .init("repack"))
        try container.encodeIfPresent(result.repackSkipped, forKey: .init("repackSkipped"))
    }
}
