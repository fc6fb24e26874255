import CArchive
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one `struct archive*` (read or write side) and frees it exactly once
/// with `archive_free`. It is also the single choke point through which
/// every libarchive return code of this module is checked.
final class ArchiveHandle {
    let raw: OpaquePointer
    /// How errors name the archive: its path, or "fd N".
    let label: String

    init(_ raw: OpaquePointer, label: String) {
        self.raw = raw
        self.label = label
    }

    deinit {
        archive_free(raw)
    }

    /// Returns `rc` when it is `ARCHIVE_OK`, `ARCHIVE_EOF` or a byte count;
    /// anything negative (including `ARCHIVE_WARN`: a warning may mean a
    /// mangled name or lost data, which a backup must not ignore) throws with
    /// libarchive's own error text.
    @discardableResult
    func check<Code: BinaryInteger>(
        _ rc: Code, _ operation: @autoclosure () -> String, entry: String? = nil
    ) throws(ArchiveError) -> Code {
        guard rc < 0 else { return rc }
        throw failure(operation(), entry: entry, code: Int(rc))
    }

    /// For a libarchive constructor (`archive_read_new`, ...) that returned NULL.
    static func allocationFailure(_ function: String, archive label: String) -> ArchiveError {
        .library(
            operation: "allocate memory for", message: "\(function) returned NULL", errno: ENOMEM,
            archive: label, entry: nil
        )
    }

    /// The error libarchive currently reports, for calls that signal failure
    /// some other way (a NULL pointer, a short count).
    func failure(_ operation: String, entry: String?, code: Int? = nil) -> ArchiveError {
        let message = archive_error_string(raw).map { String(cString: $0) }
            ?? "libarchive failed without a message" + (code.map { " (code \($0))" } ?? "")
        return .library(operation: operation, message: message, errno: archive_errno(raw), archive: label, entry: entry)
    }
}
