import ArgumentParser
import Foundation
import PGClient
import PGVaultCore
import PGVaultGenerator

extension PGVaultCommand {
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fill a migrated, empty database with synthetic chat data.",
            discussion: """
                The data is deterministic: the same seed and sizes give the same rows, ids \
                included, on every run. It has realistic skew (a few heavy users, servers and \
                channels; user #0 is the heaviest author), rows in every monthly partition and in \
                the DEFAULT partitions, soft-deleted rows, NULLs, replies, mentions, JSONB and \
                arrays, and text that is hostile to COPY and quoting (tabs, newlines, \
                backslashes, a literal \\N, quotes, Korean, emoji). Every constraint holds.

                Scales: tiny (200 users, 5k messages), small (5k users, 100k messages), \
                default (100k users, 3M messages: about 2 GB and a few minutes), large (333k users, 10M \
                messages: about 7.5 GB). --users and --messages override the scale's sizes; the other counts \
                follow from them.

                Shapes: many-partitions (with --partitions N) replaces the monthly partitions of messages \
                with N daily ones from 2024-01-01, named messages_YYYY_MM_DD with UTC-midnight bounds like \
                the migrations' create_monthly_partition, and spreads the small scale's messages over those \
                days (about 200k rows in all).

                Run `pgvault migrate` first. Progress goes to standard error, the summary to \
                standard output.

                Examples:
                  pgvault generate -d "dbname=chat" --scale small
                  pgvault generate -d postgresql://app@db1/chat --seed 42 --analyze
                  pgvault generate -d "dbname=chat" --users 20000 --messages 500000 --json
                  pgvault generate -d "dbname=chat" --shape many-partitions --partitions 1000

                Exit status: 0 generated; 2 it could not (an unmigrated or non-empty \
                database, a lost connection).
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Preset size: tiny, small, default or large.", valueName: "NAME"))
        var scale = ScaleName(argument: "default")!

        @Option(help: ArgumentHelp("Preset layout instead of a scale: many-partitions (needs --partitions).", valueName: "NAME"))
        var shape: String?

        @Option(parsing: .unconditional, help: ArgumentHelp("Daily partitions of messages for --shape many-partitions.", valueName: "N"))
        var partitions: Int?

        @Option(parsing: .unconditional, help: ArgumentHelp("Number of users (overrides the scale).", valueName: "N"))
        var users: Int?

        @Option(parsing: .unconditional, help: ArgumentHelp("Number of messages (overrides the scale).", valueName: "N"))
        var messages: Int?

        @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the pseudo-random generator.", valueName: "N"))
        var seed: UInt64 = 1

        @Option(parsing: .unconditional, help: ArgumentHelp(
            "Connections loading messages.",
            discussion: "With 1, the tables load without foreign keys, which are checked once at the end; with more, they are checked row by row, which is worth it on a server with cores to spare. The benchmark harness uses 1.",
            valueName: "N"))
        var jobs: Int = 2

        @Flag(help: "Run ANALYZE on the generated tables at the end (about a minute at the default scale).")
        var analyze = false

        @Flag(help: "Print the summary as one JSON object on one line (docs/cli.md).")
        var json = false

        func validate() throws {
            if let users, users < 10 { throw ValidationError("--users must be at least 10") }
            if let messages, messages < 200 { throw ValidationError("--messages must be at least 200") }
            if jobs < 1 || jobs > 64 { throw ValidationError("'--jobs' must be between 1 and 64") }
            if let shape, !GeneratorConfig.shapeNames.contains(shape) {
                throw ValidationError("'--shape \(shape)' is not a shape; choose one of \(GeneratorConfig.shapeNames.joined(separator: ", "))")
            }
            if shape != nil && partitions == nil { throw ValidationError("'--shape many-partitions' needs '--partitions N' (for example 1000)") }
            if shape == nil && partitions != nil { throw ValidationError("'--partitions' is only valid with '--shape many-partitions'") }
            if let partitions, partitions < 1 || partitions > 20_000 {
                throw ValidationError("'--partitions' must be between 1 and 20000 (got \(partitions))")
            }
        }

        func run() async throws {
            let report = CommandReport("generate", json: json, database: connection.databaseName)
            try await report.run {
                var config = try GeneratorConfig.scale(scale.name, seed: seed)
                if let shape, let partitions { config = try GeneratorConfig.shape(shape, partitions: partitions, seed: seed) }
                if users != nil || messages != nil {
                    let dailyPartitions = config.dailyPartitions
                    config = GeneratorConfig(seed: seed, users: users ?? config.users, messages: messages ?? config.messages)
                    config.dailyPartitions = dailyPartitions
                }
                config.workers = jobs
                config.analyze = analyze
                let generator = DataGenerator(config: config)
                let conninfo = connection.dbname
                note("generating \(config.users) users and \(config.messages) messages (seed \(config.seed)) into \(connection.display)")
                let summary = try await Blocking.run("pgvault-generate") {
                    try generator.run(conninfo: conninfo) { note("  " + $0) }
                }
                report.result(WithStatus(value: summary)) { Self.table(summary) }
            }
        }

        static func table(_ summary: GeneratorSummary) -> String {
            let width = summary.tables.map(\.table.count).max() ?? 5
            var lines = summary.tables.map { row in
                row.table.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + String(row.rows)
            }
            lines.append("total".padding(toLength: width, withPad: " ", startingAt: 0) + "  " + String(summary.totalRows))
            lines.append("")
            lines.append("seed \(summary.seed); heaviest user \(summary.heaviestUserID) (\(summary.heaviestUserMessages) messages)")
            lines.append(String(format: "done in %.1f s", summary.seconds))
            return lines.joined(separator: "\n")
        }
    }
}
