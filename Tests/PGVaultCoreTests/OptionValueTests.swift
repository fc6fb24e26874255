import Foundation
import PGVaultCore
import TestSupport
import Testing

/// Options with a fixed set of values, durations and Prometheus labels are
/// checked while the command line is parsed: a wrong one is a usage error
/// (exit 64) that names the option, before any connection or file is touched.
@Suite("CLI: option values are checked before any work")
struct OptionValueTests {
    static let labelCases: [(text: String, name: String?, value: String?)] = [
        ("cluster=main", "cluster", "main"), ("_x=", "_x", ""), ("a1=b=c", "a1", "b=c"), ("Env=prod", "Env", "prod"),
        ("cluster", nil, nil), ("1cluster=x", nil, nil), ("__reserved=x", nil, nil), ("clu-ster=x", nil, nil),
        ("=x", nil, nil), ("clusté=x", nil, nil),
    ]

    @Test("--label NAME=VALUE: Prometheus's label names only", arguments: labelCases)
    func labels(text: String, name: String?, value: String?) {
        let label = try? WalPrometheusLabel(parsing: text)
        #expect(label?.name == name)
        #expect(label?.value == value)
    }

    /// A server that is not there: reaching it would fail with exit 2 or 3, not 64.
    static let absent = "host=/nonexistent-pgvault-socket-dir dbname=chat connect_timeout=2"

    static let badValues: [(args: [String], option: String)] = [
        (["backup", "-d", absent, "-o", "SCRATCH/out", "--format", "zip"], "--format"),
        (["backup", "-d", absent, "-o", "SCRATCH/out", "--copy-format", "binary"], "--copy-format"),
        (["backup", "-d", absent, "-o", "SCRATCH/out", "--lock-wait-timeout", "soon"], "--lock-wait-timeout"),
        (["restore", "SCRATCH/in", "-d", absent, "--order", "random"], "--order"),
        (["archive-partitions", "-d", absent, "--table", "m", "--older-than", "1year", "--repo", "SCRATCH", "--referencing-rows", "keep"], "--referencing-rows"),
        (["archive-partitions", "-d", absent, "--table", "m", "--older-than", "12m", "--repo", "SCRATCH"], "--older-than"),
        (["restore-partitions", "-d", absent, "--repo", "SCRATCH", "--table", "m", "--since", "2024-01", "--lock-wait-timeout", "1year"], "--lock-wait-timeout"),
        (["generate", "-d", absent, "--scale", "huge"], "--scale"),
        (["generate", "-d", absent, "--shape", "few-partitions", "--partitions", "10"], "--shape"),
        (["generate", "-d", absent, "--shape", "many-partitions"], "--partitions"),
        (["generate", "-d", absent, "--partitions", "10"], "--partitions"),
        (["generate", "-d", absent, "--shape", "many-partitions", "--partitions", "0"], "--partitions"),
        (["export-worker", "-d", absent, "--output-dir", "SCRATCH/out", "--poll-interval", "often"], "--poll-interval"),
        (["wal-status", "-d", absent, "--prometheus", "--label", "bad-name=x"], "--label"),
        (["wal-status", "-d", absent, "--prometheus", "--label", "cluster"], "--label"),
    ]

    @Test("a wrong value is a usage error naming the option (exit 64), before any work", arguments: badValues)
    func badValue(args: [String], option: String) throws {
        let scratch = try TestScratch.directory("option-values")
        let args = args.map { $0.replacingOccurrences(of: "SCRATCH", with: scratch) }
        let result = try Shell.capture([try Shell.pgvault()] + args)
        #expect(result.status == 64, "\(args.joined(separator: " ")): exit \(result.status)\n\(result.stderr)")
        #expect(result.stderr.contains(option), "\(result.stderr)")
        #expect(result.stderr.hasPrefix("pgvault \(args[0]): error: "), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty, "\(args[0]) wrote into \(scratch)")
    }

    static let listedValues: [(command: String, option: String, values: [String])] = [
        ("backup", "--format", ["directory", "file"]),
        ("backup", "--copy-format", ["auto", "text"]),
        ("restore", "--order", ["size", "newest-first"]),
        ("archive-partitions", "--referencing-rows", ["refuse", "archive"]),
        ("generate", "--scale", ["tiny", "small", "default", "large"]),
        ("generate", "--shape", ["many-partitions"]),
    ]

    @Test("--help lists the values of a fixed-value option", arguments: listedValues)
    func helpListsValues(command: String, option: String, values: [String]) throws {
        let help = try Shell.capture([try Shell.pgvault(), command, "--help"]).stdout
        // The option's entry runs from its name to the next option's.
        let start = try #require(help.range(of: "\n  \(option) <"), "\(command) --help has no \(option)")
        let rest = help[start.upperBound...]
        let entry = rest.range(of: "\n  -").map { rest[..<$0.lowerBound] } ?? rest
        for value in values { #expect(entry.contains(value), "\(command) \(option) does not list \(value): \(entry)") }
    }

    @Test("durations: --lock-wait-timeout 2m and --poll-interval 500ms are accepted")
    func durationsAccepted() throws {
        let scratch = try TestScratch.directory("option-durations")
        // Accepted at parse time: the command goes on to fail reaching the absent server (exit 2).
        let backup = try Shell.capture([try Shell.pgvault(), "backup", "-d", Self.absent, "-o", scratch + "/out", "--lock-wait-timeout", "2m"])
        #expect(backup.status == 2, "\(backup.stderr)")
        let worker = try Shell.capture([try Shell.pgvault(), "export-worker", "-d", Self.absent, "--output-dir", scratch + "/exports", "--once", "--poll-interval", "500ms", "--lease", "5m"])
        #expect(worker.status == 2, "\(worker.stderr)")
    }
}
