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
                is never used by restore.

                Examples:
                  pgvault list --repo /backups
                  pgvault list --repo /backups --json | jq '.[0]'
                """)

        @Option(help: ArgumentHelp("Repository folder.", valueName: "DIR"))
        var repo: String

        @Flag(help: "Print a JSON array.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let entries = try Repository(path: repo).entries()
                if json {
                    printJSON(entries)
                    return
                }
                if entries.isEmpty {
                    print("no backups in \(repo)")
                    return
                }
                let rows = entries.map { e in
                    [e.name, e.status, e.startedAt ?? "-", Format.bytes(e.bytes),
                     e.seconds.map { String(format: "%.1fs", $0) } ?? "-", e.rows.map(String.init) ?? "-"]
                }
                printTable(header: ["BACKUP", "STATUS", "STARTED", "SIZE", "DURATION", "ROWS"], rows: rows)
            }
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
