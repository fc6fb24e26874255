import Foundation
import PGVaultCore

/// Writes the metrics file of a run whose work is done and kept (a published
/// backup, partitions archived or restored). A failure here cannot undo that
/// work, so it is a warning, printed on standard error and returned for the
/// JSON line, never a failed run: the JSON, the exit status and `list` then
/// tell the same story. The folder was checked before the run started
/// (`OutputPath.checkWritableFile`), so this is rare.
func writeSuccessMetrics(_ path: String?, command: String, database: String, summary: BackupSummary) -> [String]? {
    guard let path else { return nil }
    do {
        try MetricsFile.write(path, job: command, database: database, success: true, summary: summary)
        return nil
    } catch {
        let warning = "\(command) complete, but the metrics file was not written: \(error)"
        note("pgvault \(command): warning: \(warning)")
        return [warning]
    }
}

/// What a failed run writes to its metrics file (success 0), for
/// ``CommandReport/onFailure``; nil without a metrics file.
func failureMetrics(_ path: String?, command: String, database: String) -> (() -> Void)? {
    guard let path else { return nil }
    return { try? MetricsFile.write(path, job: command, database: database, success: false, summary: nil) }
}
