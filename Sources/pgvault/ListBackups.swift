import ArgumentParser
import Foundation
import PGVaultCore

extension PGVaultCommand {
    struct ListBackups: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the backups in a repository: status, size, duration, rows.",
            discussion: """
                A backup still running, or one that was interrupted, shows as incomplete and \
                is never used by restore. A folder that is not a backup (cold/, a nested \
                repository, anything else) is named below the table for what it is; prune \
                never touches it.

                Examples:
                  pgvault list --repo /backups/chat
                  pgvault list --repo /backups/chat --json | jq '.backups[0]'
                  pgvault list --repo /backups/chat --cold

                Exit status: 0 listed; 2 the repository cannot be read.
                """)

        @Option(help: ArgumentHelp("Repository folder.", valueName: "DIR"))
        var repo: String

        @OptionGroup var s3: S3EndpointOption

        @Option(help: ArgumentHelp("A format-2 repository's key file (default: ~/.config/pgvault/keys/<id>.key).", valueName: "FILE"))
        var keyFile: String?

        @Flag(help: "Print one JSON object on one line: the repository and its backups (or cold archives).")
        var json = false

        @Flag(help: "List the ranges of partitioned tables in cold storage (archive-partitions) instead of backups.")
        var cold = false

        func run() async throws {
            let report = CommandReport("list", json: json)
            try await report.run {
                if cold { return try listCold(report) }
                if ChunkRepository.exists(path: repo) { return try listFormat2(report) }
                let (entries, others) = try Repository.existing(repo).scan()
                report.result(ListResult(repository: repo, items: entries, key: "backups")) {
                    var lines: [String] = []
                    if entries.isEmpty {
                        lines.append("no backups in \(repo)")
                    } else {
                        let rows = entries.map { e in
                            [e.name, e.status, e.startedAt ?? "-", Format.bytes(e.bytes),
                             e.seconds.map { String(format: "%.1fs", $0) } ?? "-", e.rows.map(String.init) ?? "-"]
                        }
                        lines.append(textTable(header: ["BACKUP", "STATUS", "STARTED", "SIZE", "DURATION", "ROWS"], rows: rows))
                    }
                    if !others.isEmpty {
                        lines.append("\nnot backups (prune never touches them):")
                        lines += others.map { "  " + describe($0) }
                    }
                    return lines.joined(separator: "\n")
                }
            }
        }

        /// A format-2 repository: from the catalogs, with what each backup
        /// added; no identity needed (the key file is).
        func listFormat2(_ report: CommandReport) throws {
            let repository = try ChunkRepository.open(path: repo, credentials: .init(keyFile: keyFile))
            let drills = try DrillRecords.latest(in: repository)
            let entries = try repository.entries().map { e in
                var e = e
                e.lastDrill = drills[e.name]
                return e
            }
            report.result(ListResult(repository: repo, items: entries, key: "backups")) {
                guard !entries.isEmpty else { return "no backups in \(repo)" }
                let rows = entries.map { e in
                    [e.name, e.status, e.startedAt ?? "-", Format.bytes(e.logicalBytes ?? 0), Format.bytes(e.addedBytes ?? 0),
                     e.seconds.map { String(format: "%.1fs", $0) } ?? "-", e.rows.map(String.init) ?? "-",
                     e.lastDrill.map { "\($0.outcome) \($0.completedAt) (\(String(format: "%.1fs", $0.recoverySeconds)))" } ?? "-"]
                }
                return textTable(header: ["BACKUP", "STATUS", "STARTED", "LOGICAL", "ADDED", "DURATION", "ROWS", "LAST DRILL"], rows: rows)
            }
        }

        func describe(_ other: Repository.Other) -> String {
            let path = (repo as NSString).appendingPathComponent(other.name)
            switch other.kind {
            case .coldStorage: return "\(other.name)/  cold storage: pgvault list --repo \(repo) --cold"
            case .nestedRepository: return "\(other.name)/  another repository: pgvault list --repo \(path)"
            case .unknown: return "\(other.name)  not written by pgvault"
            }
        }

        func listCold(_ report: CommandReport) throws {
            let entries = ChunkRepository.exists(path: repo)
                ? try ChunkRepository.open(path: repo, credentials: .init(keyFile: keyFile)).coldEntries()
                : try ColdStore(repo: try Repository.existing(repo).path).entries()
            report.result(ListResult(repository: repo, items: entries, key: "cold")) {
                guard !entries.isEmpty else { return "nothing in cold storage in \(repo)" }
                let rows = entries.map { e in
                    [e.table, e.from, e.to, e.partition, e.status, String(e.rows),
                     e.referencingRows.values.reduce(0, +) > 0 ? e.referencingRows.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") : "-",
                     Format.bytes(e.bytes), e.archivedAt ?? "-"]
                }
                return textTable(header: ["TABLE", "FROM", "TO", "PARTITION", "STATUS", "ROWS", "REFERENCING ROWS", "SIZE", "ARCHIVED"], rows: rows)
            }
        }
    }
}
