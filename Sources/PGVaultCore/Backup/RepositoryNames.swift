import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Repository {
    /// A new backup's wanted path: `<database>-<UTC time to the millisecond>`,
    /// with `.tar` for the file form. ``RepositoryNames/claim(_:)`` turns it into
    /// a name no other backup has.
    public func newBackupPath(database: String, at date: Date = Date(), form: BackupOptions.Form = .directory) -> String {
        path + "/" + Self.backupName(database: database, at: date) + (form == .file ? ".tar" : "")
    }

    /// `<database>-<UTC time to the millisecond>`, the database's name made
    /// safe for a file or object name.
    static func backupName(database: String, at date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        let safe = database.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }
        return String(safe) + "-" + f.string(from: date)
    }
}

/// The names pgvault gives to what it writes in a repository.
enum RepositoryNames {
    /// The pid in a staging name, `.<name>.partial-<pid>` (a folder) or
    /// `.<name>.partial-<pid>.tar` (the tar being written from it); nil for any
    /// other name.
    static func partialPID(_ name: String) -> Int32? {
        guard name.hasPrefix("."), let marker = name.range(of: ".partial-", options: .backwards) else { return nil }
        var tail = name[marker.upperBound...]
        if tail.hasSuffix(".tar") { tail = tail.dropLast(4) }
        guard !tail.isEmpty, tail.allSatisfy(\.isASCII), tail.allSatisfy(\.isNumber) else { return nil }
        return Int32(tail)
    }

    /// The backup name an entry stands for, without `.tar`, the staging
    /// decoration or a prune's `.deleting`: `chat-X`, `chat-X.tar`,
    /// `.chat-X.partial-12` and `.chat-X.tar.partial-12.tar` are all `chat-X`.
    static func stem(_ name: String) -> String {
        var s = Substring(name)
        if s.hasPrefix(".") {
            if let marker = s.range(of: ".partial-", options: .backwards) { s = s[..<marker.lowerBound] }
            else if s.hasSuffix(".deleting") { s = s.dropLast(".deleting".count) }
            s = s.dropFirst()
        }
        if s.hasSuffix(".tar") { s = s.dropLast(4) }
        return String(s)
    }

    /// Picks the first free name among `wanted`, `wanted-1`, `wanted-2`, ... (free:
    /// no backup, tar, staging folder or prune in progress has that stem) and
    /// creates its staging folder, `.<name>.partial-<pid>`. The folder is locked
    /// (flock) meanwhile, so two backups that start in the same millisecond,
    /// even from two hosts of one NFS export, still get two names; and the
    /// staging folder, visible to the next claim, keeps the name taken while
    /// the backup runs. This claim is the local folder's: an object store has
    /// no lock and no folders, so a repository there will claim a name with a
    /// conditional put of a claim object (or make names unique without
    /// coordination); see docs/storage.md, "What still renames".
    static func claim(_ wanted: String) throws -> (output: String, staging: String) {
        let folder = (wanted as NSString).deletingLastPathComponent
        let leaf = (wanted as NSString).lastPathComponent
        let ext = leaf.hasSuffix(".tar") ? ".tar" : ""
        let base = String(leaf.dropLast(ext.count))
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open repository", path: folder) }
        defer { close(fd) }
        // A filesystem without flock still gets distinct names from the
        // millisecond and the staging folders; only a true tie could clash.
        _ = flock(fd, LOCK_EX)
        let taken = Set(((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).map(stem))
        for n in 0..<10_000 {
            let name = n == 0 ? base : "\(base)-\(n)"
            guard !taken.contains(name) else { continue }
            let staging = folder + "/." + name + ext + ".partial-\(getpid())"
            try Files.makeDirectory(staging)
            return (folder + "/" + name + ext, staging)
        }
        throw PGVaultError.archive("repository '\(folder)' already has 10000 backups named \(base)-N; prune it")
    }
}
