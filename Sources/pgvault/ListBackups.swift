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

        @Flag(help: "Print a JSON array.")
        var json = false

        @Flag(help: "List the ranges of partitioned tables in cold storage (archive-partitions) instead of backups.")
        var cold = false

        func run() async throws {
            try await reportingErrors {
                if cold { return try listCold() }
                let (entries, others) = try Repository.existing(repo).scan()
                if json {
                    printJSON(entries)
                    return
                }
                if entries.isEmpty {
                    print("no backups in \(repo)")
                } else {
                    let rows = entries.map { e in
                        [e.name, e.status, e.startedAt ?? "-", Format.bytes(e.bytes),
                         e.seconds.map { String(format: "%.1fs", $0) } ?? "-", e.rows.map(String.init) ?? "-"]
                    }
                    printTable(header: ["BACKUP", "STATUS", "STARTED", "SIZE", "DURATION", "ROWS"], rows: rows)
                }
                if !others.isEmpty {
                    print("\nnot backups (prune never touches them):")
                    for other in others { print("  " + describe(other)) }
                }
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

        func listCold() throws {
            let entries = try ColdStore(repo: try Repository.existing(repo).path).entries()
            if json {
                printJSON(entries)
                return
            }
            if entries.isEmpty {
                print("nothing in cold storage in \(repo)")
                return
            }
            let rows = entries.map { e in
                [e.table, e.from, e.to, e.partition, e.status, String(e.rows),
                 e.referencingRows.values.reduce(0, +) > 0 ? e.referencingRows.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") : "-",
                 Format.bytes(e.bytes), e.archivedAt ?? "-"]
            }
            printTable(header: ["TABLE", "FROM", "TO", "PARTITION", "STATUS", "ROWS", "REFERENCING ROWS", "SIZE", "ARCHIVED"], rows: rows)
        }
    }
}

func printTable(header: [String], rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    for r in rows { print(line(r)) }
}
