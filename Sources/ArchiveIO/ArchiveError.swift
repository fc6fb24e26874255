#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors from the ArchiveIO layer. Each carries enough context (archive,
/// entry, operation, libarchive's own text, errno) to be shown to a user as is.
public enum ArchiveError: Error, CustomStringConvertible, Equatable, Sendable {
    /// libarchive reported a failure: `message` is `archive_error_string`,
    /// `errno` is `archive_errno`, `archive` names the archive (a path or "fd N").
    case library(operation: String, message: String, errno: Int32, archive: String, entry: String?)
    /// A system call of this layer failed (creating the archive file, an extracted file, ...).
    case system(operation: String, path: String, errno: Int32)
    /// An archive being read holds an entry that could write outside the
    /// output folder or is not a plain file or directory.
    case unsafeEntry(name: String, reason: String)
    /// The caller asked to write an entry whose name the reader would refuse.
    case invalidEntryName(name: String, reason: String)
    /// An entry's data did not have the size declared for it.
    case sizeMismatch(entry: String, declared: Int64, actual: Int64)
    /// The API was used out of order (e.g. `write` with no entry begun).
    case misuse(String)

    public var description: String {
        switch self {
        case let .library(operation, message, code, archive, entry):
            let which = entry.map { " (entry '\($0)')" } ?? ""
            return "cannot \(operation) archive '\(archive)'\(which): \(message)\(errnoSuffix(code))"
        case let .system(operation, path, code):
            return "cannot \(operation) '\(path)'\(errnoSuffix(code))"
        case let .unsafeEntry(name, reason):
            return "archive entry '\(name)' \(reason); refusing to read this archive"
        case let .invalidEntryName(name, reason):
            return "cannot add entry '\(name)' to an archive: the name \(reason)"
        case let .sizeMismatch(entry, declared, actual):
            return "archive entry '\(entry)' was declared as \(declared) bytes but has \(actual)"
        case let .misuse(text):
            return "archive API misuse: \(text)"
        }
    }
}

private func errnoSuffix(_ code: Int32) -> String {
    code == 0 ? "" : ": \(String(cString: strerror(code))) (errno \(code))"
}
