import CryptoDigest
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How an export package reaches its final name: it is written under a hidden
/// temporary name in the same folder (`.NAME.partial-<host>-<pid>[-a<attempt>]`),
/// closed and fsynced, then renamed (or linked) into place and the folder
/// fsynced. A package is never visible under its final name unless complete.
public enum ExportFiles {
    /// A file operation of the export that failed, with its errno's text.
    static func failure(_ operation: String, _ path: String, code: Int32 = errno) -> PGVaultError {
        .io("cannot \(operation) '\(path)': \(String(cString: strerror(code)))")
    }

    /// An existing --output: an export is never overwritten.
    static func alreadyExists(output: String) -> PGVaultError {
        .io("'\(output)' already exists; pgvault does not overwrite an export (remove it or choose another --output)")
    }

    /// This machine's name, as the worker id and temporary names use it.
    public static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// Characters safe in a file name component; anything else becomes `_`.
    static func sanitized(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "_" })
    }

    /// The temporary name for `finalPath` written by this process.
    public static func partialPath(for finalPath: String, attempt: Int? = nil) -> String {
        let url = URL(fileURLWithPath: finalPath)
        let folder = url.deletingLastPathComponent().path
        let suffix = attempt.map { "-a\($0)" } ?? ""
        return folder + "/." + url.lastPathComponent + partialMarker + sanitized(hostName) + "-\(getpid())" + suffix
    }

    static let partialMarker = ".partial-"

    /// Publishes a finished package through its folder's ``ObjectStore``
    /// (docs/storage.md): the object appears whole or not at all. A local
    /// folder renames it into place (`replacing`), or links it, failing if
    /// the name is taken; a remote store would upload it.
    public static func publish(_ partial: String, as finalPath: String, replacing: Bool) throws {
        let url = URL(fileURLWithPath: finalPath)
        let store = LocalFolderStore(root: url.deletingLastPathComponent().path)
        do {
            _ = try store.adopt(file: partial, as: url.lastPathComponent, ifAbsent: !replacing)
        } catch let error as PGVaultError where error.isExistingObject {
            throw alreadyExists(output: finalPath)
        } catch let error as PGVaultError {
            // Named as the user gave it: the package's path, not a key in a store.
            guard let system = error.underlying as? SystemCallError else { throw error }
            throw failure(replacing ? "rename to" : "create", finalPath, code: system.code)
        }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Removes a file; a missing file is not an error.
    public static func remove(_ path: String) { unlink(path) }

    /// Creates `path` (owner-only) unless it is already a folder.
    public static func ensureFolder(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw PGVaultError.io("'\(path)' is not a folder") }
            return
        }
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw failure("create folder", path) }
    }

    /// Size and SHA-256 of a file, read back from disk in 1 MiB chunks.
    public static func sizeAndDigest(of path: String) throws -> (bytes: Int64, sha256: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        let digest = try SHA2(.sha256)
        var total: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read", path)
            }
            if n == 0 { break }
            try buffer.withUnsafeBytes { try digest.update(UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }
            total += Int64(n)
        }
        return (total, try digest.hexDigest())
    }

    /// Removes the temporary files in `folder` whose final name is
    /// `finalName` (any writer, any attempt). Returns the names removed.
    @discardableResult
    public static func removePartials(of finalName: String, in folder: String) -> [String] {
        let prefix = "." + finalName + partialMarker
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) {
            if unlink(folder + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }

    /// Removes temporary files in `folder` left by processes of this machine
    /// that no longer run. Returns the names removed.
    @discardableResult
    public static func removeOrphanedPartials(in folder: String) -> [String] {
        let host = sanitized(hostName)
        let marker = partialMarker + host + "-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let range = name.range(of: marker, options: .backwards) else { continue }
            // <pid> or <pid>-a<attempt>, nothing else (another host's name may
            // start like ours).
            let parts = name[range.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 1 || (parts.count == 2 && parts[1].hasPrefix("a") && Int(parts[1].dropFirst()) != nil),
                  let pid = Int32(parts[0]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }  // still running
            if unlink(folder + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }
}
