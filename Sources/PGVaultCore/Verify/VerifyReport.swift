import Foundation

/// One result of a verification: a member of an archive, a table's rows and
/// content, or a foreign key.
public struct VerifyFinding: Codable, Sendable, Equatable {
    /// `archive` (a member's bytes and zstd stream, or the manifest), `rows`
    /// (a row count), `digest` (a content digest), `foreign-key` (a declared
    /// constraint), `relation` (a relation from the --relations file).
    public var check: String
    /// `ok`, `failed` or `skipped`.
    public var status: String
    /// The table (`schema.name`) or archive member the finding is about.
    public var object: String
    /// The constraint (or declared relation) checked, for `foreign-key` and `relation`.
    public var constraint: String?
    public var detail: String
    /// A few offending keys (or members, rows) when the check failed.
    public var samples: [String]

    public init(check: String, status: String, object: String, constraint: String? = nil, detail: String, samples: [String] = []) {
        self.check = check
        self.status = status
        self.object = object
        self.constraint = constraint
        self.detail = detail
        self.samples = samples
    }

    public static func ok(_ check: String, _ object: String, constraint: String? = nil, _ detail: String) -> VerifyFinding {
        VerifyFinding(check: check, status: "ok", object: object, constraint: constraint, detail: detail)
    }

    public static func failed(
        _ check: String, _ object: String, constraint: String? = nil, _ detail: String, samples: [String] = []
    ) -> VerifyFinding {
        VerifyFinding(check: check, status: "failed", object: object, constraint: constraint, detail: detail, samples: samples)
    }

    public var isFailure: Bool { status == "failed" }
}

/// Everything a verification found. `ok` is true when no finding failed;
/// `status` says the same in the word every command's JSON has (docs/cli.md).
public struct VerifyReport: Codable, Sendable {
    public var ok: Bool
    public var status: String { ok ? "ok" : "failed" }
    public var findings: [VerifyFinding]
    public var durationSeconds: Double

    public var failures: [VerifyFinding] { findings.filter(\.isFailure) }

    enum CodingKeys: String, CodingKey {
        case ok, findings, durationSeconds, status
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ok, forKey: .ok)
        try container.encode(status, forKey: .status)
        try container.encode(findings, forKey: .findings)
        try container.encode(durationSeconds, forKey: .durationSeconds)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ok = try container.decode(Bool.self, forKey: .ok)
        findings = try container.decode([VerifyFinding].self, forKey: .findings)
        durationSeconds = try container.decode(Double.self, forKey: .durationSeconds)
    }

    public init(findings: [VerifyFinding], durationSeconds: Double) {
        self.findings = findings
        self.durationSeconds = durationSeconds
        ok = !findings.contains(where: \.isFailure)
    }

    /// The report as JSON on one line (stable key order), newline-terminated.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    /// A plain-text table for a terminal or a log: failures first, then skipped
    /// checks, then (with `verbose`) the passing ones; then one summary line.
    /// Samples are listed under their finding. With a `width` (a terminal's),
    /// long details are cut to fit; without, nothing is cut.
    public func table(verbose: Bool = false, width: Int? = nil) -> String {
        let order = ["failed": 0, "skipped": 1, "ok": 2]
        let shown = findings.enumerated()
            .filter { verbose || $0.element.status != "ok" }
            .sorted { (order[$0.element.status] ?? 3, $0.offset) < (order[$1.element.status] ?? 3, $1.offset) }
            .map(\.element)
        var out = ""
        if !shown.isEmpty {
            let header = ["CHECK", "STATUS", "OBJECT", "CONSTRAINT", "DETAIL"]
            let rows = shown.map { [$0.check, $0.status.uppercased(), $0.object, $0.constraint ?? "-", $0.detail] }
            var widths = header.map(\.count)
            for row in rows {
                for i in 0..<4 { widths[i] = min(max(widths[i], row[i].count), width == nil ? Int.max : 48) }
            }
            let indent = widths[0..<4].reduce(0, +) + 8
            func line(_ cells: [String]) -> String {
                var text = ""
                for i in 0..<4 { text += Self.fit(cells[i], widths[i]) + "  " }
                return text + Self.fit(cells[4], width.map { max(24, $0 - indent) })
            }
            out += line(header).trimmedRight() + "\n"
            for (finding, row) in zip(shown, rows) {
                out += line(row).trimmedRight() + "\n"
                if !finding.samples.isEmpty {
                    let samples = "samples: " + finding.samples.joined(separator: "; ")
                    out += (String(repeating: " ", count: indent) + Self.fit(samples, width.map { max(24, $0 - indent) })).trimmedRight() + "\n"
                }
            }
            out += "\n"
        }
        out += summary + "\n"
        return out
    }

    /// `FAILED: 2 of 40 checks failed (1 skipped) in 1.2 s` or `OK: 40 checks passed in 1.2 s`.
    public var summary: String {
        let failed = findings.filter { $0.status == "failed" }.count
        let skipped = findings.filter { $0.status == "skipped" }.count
        let seconds = String(format: "%.1f s", durationSeconds)
        let skippedNote = skipped > 0 ? " (\(skipped) skipped)" : ""
        if failed > 0 {
            var byCheck: [String: Int] = [:]
            for f in findings where f.isFailure { byCheck[f.check, default: 0] += 1 }
            let kinds = byCheck.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "FAILED: \(failed) of \(findings.count) checks failed (\(kinds))\(skippedNote) in \(seconds)"
        }
        return "OK: \(findings.count - skipped) checks passed\(skippedNote) in \(seconds)"
    }

    /// `text` on one line, padded to `width`, or cut to it with an ellipsis.
    static func fit(_ text: String, _ width: Int?) -> String {
        let oneLine = text.replacingOccurrences(of: "\n", with: " ")
        guard let width else { return oneLine }
        if oneLine.count > width { return String(oneLine.prefix(max(width - 1, 0))) + "…" }
        return oneLine + String(repeating: " ", count: width - oneLine.count)
    }
}

fileprivate extension String {
    func trimmedRight() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
