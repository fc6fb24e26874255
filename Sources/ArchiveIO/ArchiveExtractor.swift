#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Extracts archives into a folder without ever writing outside it.
///
/// - Entry names are checked by `ArchiveReader` (no absolute names, no `..`,
///   no links or special files).
/// - Every path is resolved component by component from a descriptor of the
///   output folder with `openat(..., O_NOFOLLOW)`, so a symlink already
///   present inside the folder is never followed.
/// - Files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600
///   (existing files are never overwritten); directories get mode 0700.
///   The modes stored in the archive are not applied.
///
/// Extraction stops at the first error; what was extracted before stays.
/// It runs synchronously on the calling thread.
public enum ArchiveExtractor {
    public struct Summary: Sendable, Equatable {
        public var files = 0
        public var directories = 0
        public var bytes: UInt64 = 0

        public init(files: Int = 0, directories: Int = 0, bytes: UInt64 = 0) {
            self.files = files
            self.directories = directories
            self.bytes = bytes
        }
    }

    /// Extracts the archive file at `path` into the existing folder `folder`.
    public static func extract(archiveAt path: String, to folder: String) throws -> Summary {
        try extract(from: ArchiveReader(path: path), to: folder)
    }

    /// Extracts the remaining entries of `reader` into the existing folder `folder`.
    public static func extract(from reader: ArchiveReader, to folder: String) throws -> Summary {
        let root = try FileDescriptor(
            open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC), path: folder, operation: "open output folder"
        )
        var summary = Summary()
        while let entry = try reader.nextEntry() {
            var parts = EntryName.components(of: entry.path)
            switch entry.type {
            case .directory:
                _ = try openDirectory(parts, under: root, folder: folder)
                summary.directories += 1
            case .regularFile:
                let leaf = parts.removeLast()
                let parent = try openDirectory(parts, under: root, folder: folder)
                let target = folder + "/" + entry.path
                var file = try FileDescriptor(
                    openat(parent.raw, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600),
                    path: target, operation: "create extracted file"
                )
                try reader.readData { chunk in
                    try file.writeAll(chunk)
                    summary.bytes += UInt64(chunk.count)
                }
                try file.close()
                summary.files += 1
            }
        }
        return summary
    }

    /// Opens (creating with mode 0700 where missing) the directory `parts`
    /// below `root`, one component at a time and never following a symlink.
    private static func openDirectory(
        _ parts: [String], under root: borrowing FileDescriptor, folder: String
    ) throws(ArchiveError) -> FileDescriptor {
        var path = folder
        var current = try FileDescriptor(
            openat(root.raw, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), path: path, operation: "open output folder"
        )
        for part in parts {
            path += "/" + part
            if mkdirat(current.raw, part, 0o700) != 0 && errno != EEXIST {
                throw .system(operation: "create directory", path: path, errno: errno)
            }
            // O_NOFOLLOW | O_DIRECTORY: fails for a symlink or a non-directory in the way.
            current = try FileDescriptor(
                openat(current.raw, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                path: path, operation: "open directory (without following symlinks)"
            )
        }
        return current
    }
}
