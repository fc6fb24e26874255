import Foundation

extension MetricsFile {
    /// The drill's metrics (docs/runbooks/restore-drill.md has the alert
    /// rules): whether the last drill passed, when it ended, and the recovery
    /// time of the last one that passed (a failed drill keeps the previous
    /// figure, so a graph of recovery time has no holes).
    public static func writeDrill(_ path: String, repository: String, success: Bool, recoverySeconds: Double?) throws {
        let labels = "job=\"drill\",repository=\"\(escape(repository))\""
        var lines: [String] = []
        func metric(_ name: String, _ help: String, _ value: String) {
            lines += ["# HELP pgvault_\(name) \(help)", "# TYPE pgvault_\(name) gauge", "pgvault_\(name){\(labels)} \(value)"]
        }
        metric("last_drill_success", "1 if the last restore drill passed, 0 if it failed or broke off.", success ? "1" : "0")
        metric("last_drill_timestamp_seconds", "Time the last restore drill ended.", String(format: "%.0f", Date().timeIntervalSince1970))
        if success, let recoverySeconds {
            metric("drill_recovery_seconds", "Time to a restored database (fetch, schema, load, post-data) in the last drill that passed.", String(format: "%.3f", recoverySeconds))
        } else if let previous = try? String(contentsOfFile: path, encoding: .utf8) {
            var keep = false
            for line in previous.split(separator: "\n") {
                if line.hasPrefix("# HELP") { keep = line.hasPrefix("# HELP pgvault_drill_recovery_seconds") }
                if keep { lines.append(String(line)) }
            }
        }
        try publish(lines, to: path)
    }
}
