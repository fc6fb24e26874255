import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Checks made on a path the user gave for output before any work starts, so a
/// typo fails at once, naming the option and the path, instead of after an
/// hour's backup (or as an error about an internal staging name).
public enum OutputPath {
    /// `path` can be created: its folder exists, is a folder and is writable,
    /// and nothing is at `path` yet.
    public static func checkNew(_ path: String, what option: String) throws {
        try checkFolder(of: path, what: option)
        if Files.exists(path) {
            throw PGVaultError.io("'\(option) \(path)': it already exists; pgvault never overwrites an archive. Choose a new path (or use --repo).")
        }
    }

    /// `path` can be written (replaced) as a file: its folder exists and is
    /// writable, and `path` is not a folder.
    public static func checkWritableFile(_ path: String, what option: String) throws {
        try checkFolder(of: path, what: option)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw PGVaultError.io("'\(option) \(path)': it is a folder; give a file path")
        }
    }

    static func checkFolder(of path: String, what option: String) throws {
        let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw PGVaultError.io("'\(option) \(path)': its folder \(folder) does not exist; create it or choose another path")
        }
        guard isDir.boolValue else {
            throw PGVaultError.io("'\(option) \(path)': \(folder) is not a folder; choose another path")
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw PGVaultError.io("'\(option) \(path)': cannot write in \(folder) (\(String(cString: strerror(errno)))); check its permissions or choose another path")
        }
    }
}
