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

                Examples:
                  pgvault prune --repo /backups/chat --keep-daily 7 --keep-weekly 4 \\
                      --keep-monthly 12 --dry-run
                  pgvault prune --repo /backups/chat --keep-daily 7 --json

                Exit status: 0 pruned (or nothing to prune); 2 the repository cannot be \
                read or a backup could not be deleted.
                """)

        @Option(help: ArgumentHelp("Repository folder.", valueName: "DIR"))
        var repo: String

        @Option(parsing: .unconditional, help: "Daily backups to keep.") var keepDaily: Int = 7
        @Option(parsing: .unconditional, help: "Weekly backups to keep.") var keepWeekly: Int = 4
        @Option(parsing: .unconditional, help: "Monthly backups to keep.") var keepMonthly: Int = 12

        @Option(help: ArgumentHelp("A format-2 repository's key file (default: ~/.config/pgvault/keys/<id>.key).", valueName: "FILE"))
        var keyFile: String?

        @Flag(help: "Only show what would be deleted.")
        var dryRun = false

        @Flag(help: "Print one JSON object on one line: the repository and each decision.")
        var json = false

        func validate() throws {
            for (name, value) in [("--keep-daily", keepDaily), ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly)] where value < 0 {
                throw ValidationError("'\(name)' cannot be negative; give 0 or more (the newest complete backup is always kept)")
            }
        }

        func run() async throws {
            let report = CommandReport("prune", json: json)
            try await report.run {
                let policy = Repository.Policy(daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly)
                if ChunkRepository.exists(path: repo) { return try await pruneFormat2(report, policy: policy) }
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
            let repo = repo, dryRun = dryRun, credentials = ChunkRepository.Credentials(keyFile: keyFile)
            let result = try await cancellingOnSignals(leaving: "the prune stopped part way; what it deleted is gone, the rest is whole: run it again") {
                try await Blocking.run("pgvault-prune") {
                    try RepositoryPrune.run(try ChunkRepository.open(path: repo, credentials: credentials), policy: policy, dryRun: dryRun)
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
                if result.packsWithGarbage > 0 {
                    lines.append("\(result.packsWithGarbage) packs still in use hold \(Format.bytes(result.garbageBytesKept)) no backup refers to")
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
        try container.encode(result.packsWithGarbage, forKey: .init("packsWithGarbage"))
        try container.encode(result.garbageBytesKept, forKey: .init("garbageBytesKept"))
    }
}
