import Foundation
import PGClient

/// Writes one user's "download my data" package. docs/export-format.md
/// describes the package; this type is the only writer of it.
public enum UserExporter {
    public static let formatName = "pgvault-user-export"
    public static let formatVersion = 1

    /// Exports the user named by `input` into the zip at `output`, which must
    /// not exist: the package is written under a temporary name in the same
    /// folder and linked into place only when complete.
    public static func export(
        conn: PGConnection, user input: String, output: String, options: UserExportOptions = UserExportOptions()
    ) throws -> UserExportSummary {
        let started = ContinuousClock.now
        let selector = try UserSelector(parsing: input)
        if ExportFiles.exists(output) {
            throw ExportFiles.alreadyExists(output: output)
        }
        let partial = ExportFiles.partialPath(for: output)
        ExportFiles.remove(partial)
        PartialOutputs.register(partial)
        defer { PartialOutputs.forget(partial) }
        do {
            let result = try writePackage(conn: conn, user: selector, input: input, to: partial, options: options)
            let (bytes, sha256) = try ExportFiles.sizeAndDigest(of: partial)
            try options.cancellation?.check()
            try PartialOutputs.publishing(partial) { try ExportFiles.publish(partial, as: output, replacing: false) }
            let elapsed = ContinuousClock.now - started
            return UserExportSummary(
                result: result, path: output, bytes: bytes, sha256: sha256,
                elapsedSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        } catch {
            ExportFiles.remove(partial)
            throw error
        }
    }

    /// Writes the package to `path` (which must not exist; created 0600) from
    /// one REPEATABLE READ READ ONLY snapshot, and closes (fsyncs) it. On any
    /// error nothing is left at `path`. An unknown user is reported before
    /// the file is created.
    public static func writePackage(
        conn: PGConnection, user: UserSelector, input: String, to path: String,
        options: UserExportOptions = UserExportOptions()
    ) throws -> UserExportResult {
        options.cancellation?.attach(conn)
        defer { options.cancellation?.attach(nil) }
        var created = false
        do {
            return try conn.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { conn in
                try conn.execute(UserExportQueries.session)
                let userID = try user.resolveID(conn, input: input)
                try options.cancellation?.check()
                let run = try UserExportRun(conn: conn, userID: userID, path: path, options: options)
                created = true
                return try run.write()
            }
        } catch {
            if created { ExportFiles.remove(path) }
            if let reason = options.cancellation?.cancelReason { throw UserExportError.cancelled(reason: reason) }
            throw error
        }
    }
}
