import Foundation
import PGClient
import Support

/// The unfinished outputs of this process (a backup's `.partial-<pid>` folder,
/// an export's partial zip, a cold archive's staging folder). Each engine
/// removes its own when it fails or is cancelled; this list is for the one
/// case where no engine code runs any more: a second SIGINT/SIGTERM quits at
/// once (`_exit`), after `removeAll()` has deleted what is listed, so nothing
/// half-written is left behind (docs/reliability.md, "Signals").
public enum PartialOutputs {
    /// Lists `path` (a file or a folder) until `forget(path)`.
    public static func register(_ path: String) {
        _ = registry.withLock { $0.insert(path) }
    }

    /// The output was published or removed: no longer ours to delete.
    public static func forget(_ path: String) {
        _ = registry.withLock { $0.remove(path) }
    }

    /// Runs `publish` (the rename of `path` to its final name) unless the
    /// work was cancelled, and forgets `path`. The check and the rename hold
    /// the list's lock, so a quit-at-once never deletes a folder while it is
    /// being renamed into place: it finds it either listed or published.
    public static func publishing<T>(_ path: String, _ publish: () throws -> T) throws -> T {
        try registry.withLock { paths in
            try Cancellation.check()
            let result = try publish()
            paths.remove(path)
            return result
        }
    }

    /// Deletes every listed output, synchronously; for the quit-at-once path.
    public static func removeAll() {
        registry.withLock { all in
            for path in all { Files.removeTree(path) }
            all.removeAll()
        }
    }

    private static let registry = Locked<Set<String>>([])
}
