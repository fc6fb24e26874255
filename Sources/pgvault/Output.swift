import Foundation
import PGVaultCore

/// A table of columns padded to their widths, two spaces apart.
func textTable(header: [String], rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

enum Format {
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }

    static func duration(_ seconds: Double) -> String {
        if !seconds.isFinite || seconds < 0 { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
            : s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : "\(s)s"
    }
}

/// A progress line on a terminal's standard error, redrawn in place.
enum ProgressLine {
    static func show(_ p: BackupProgress) {
        let rate = p.elapsed > 0 ? Double(p.rawBytes) / p.elapsed : 0
        let remaining = rate > 0 ? Double(max(p.estimatedBytes - p.rawBytes, 0)) / rate : .infinity
        let line = "units \(p.unitsDone)/\(p.unitsTotal)  rows \(p.rows)  \(Format.bytes(p.rawBytes)) → \(Format.bytes(p.compressedBytes))  \(Format.bytes(Int64(rate)))/s  ETA \(Format.duration(remaining))"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    static func clear() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
