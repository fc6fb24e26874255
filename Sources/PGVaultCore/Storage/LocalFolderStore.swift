import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An ``ObjectStore`` in a folder of this machine: the object `a/b/c` is the
/// file `<root>/a/b/c`, owner-only (0600, folders 0700). A put writes a
/// temporary file in the object's folder, fsyncs it, renames it over the key
/// and fsyncs the folder, so the object appears whole or not at all, also
/// after a crash. Folders exist only for the objects in them, as on S3: a
/// put makes them, a delete removes the ones it empties.
public struct LocalFolderStore: ObjectStore {
    public let root: String
    public var location: String { root }
    /// Set: a write's fsyncs (its file's, its folder's) wait for this
    /// ``DeferredSync/flush()`` instead of its commit.
    let deferredSync: DeferredSync?

    /// The store of the folder `root`, which must exist before the first put.
    public init(root: String, deferringSync: DeferredSync? = nil) {
        self.root = root
        deferredSync = deferringSync
    }

    public func localPath(of key: String) -> String? {
        (try? ObjectKey.validate(key)) == nil ? nil : root + "/" + key
    }

    public func writer(for key: String, ifAbsent: Bool) throws -> any ObjectWriter {
        try ObjectKey.validate(key)
        let folder = ObjectKey.folder(of: key)
        let dir = path(ofFolder: folder)
        let temp = dir + "/." + ObjectKey.leaf(of: key) + ObjectKey.temporaryMarker + "\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        // A delete in the same folder may remove it while it is empty, between
        // making it and creating the file: make it again, once.
        for attempt in 0..<2 {
            try makeFolders(folder, for: key)
            do {
                let file = try OutputFile(creating: temp)
                return LocalObjectWriter(store: self, key: key, file: file, folder: dir, ifAbsent: ifAbsent)
            } catch let error as FileError where error.code == ENOENT && attempt == 0 {
                continue
            } catch let error as FileError {
                throw failure("write", key, error.code)
            }
        }
        throw failure("write", key, ENOENT)
    }

    public func get(_ key: String, range: Range<Int64>?, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        try ObjectKey.validate(key)
        let fd = open(root + "/" + key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw missing(key) }
            throw failure("read", key, errno)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw failure("read", key, errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw missing(key) }  // a folder is no object
        var remaining = Int64.max
        if let range {
            guard range.lowerBound >= 0, range.upperBound <= Int64(st.st_size) else { throw beyondEnd(key, range, size: Int64(st.st_size)) }
            guard lseek(fd, off_t(range.lowerBound), SEEK_SET) >= 0 else { throw failure("read", key, errno) }
            remaining = Int64(range.count)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(remaining, 1 << 20)), alignment: 16)
        defer { buffer.deallocate() }
        while remaining > 0 {
            let n = read(fd, buffer.baseAddress, Int(min(remaining, Int64(buffer.count))))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read", key, errno)
            }
            if n == 0 {
                guard let range, remaining > 0 else { break }
                throw beyondEnd(key, range, size: range.upperBound - remaining)
            }
            remaining -= Int64(n)
            try consume(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    public func head(_ key: String) throws -> ObjectInfo? {
        try ObjectKey.validate(key)
        var st = stat()
        guard lstat(root + "/" + key, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw failure("read", key, errno)
        }
        return st.st_mode & S_IFMT == S_IFREG ? ObjectInfo(key: key, size: Int64(st.st_size)) : nil
    }

    public func delete(_ key: String) throws {
        try ObjectKey.validate(key)
        if unlink(root + "/" + key) != 0 {
            // Nothing there, or a folder (no object): nothing to delete.
            if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { return }
            throw failure("delete", key, errno)
        }
        var folder = ObjectKey.folder(of: key)
        while !folder.isEmpty, rmdir(root + "/" + folder) == 0 { folder = ObjectKey.folder(of: folder) }
        try syncFolder(path(ofFolder: folder), for: key)
    }

    /// The finished, fsynced file `path` becomes the object `key`, on the
    /// same filesystem without a copy: renamed over the key, or with
    /// `ifAbsent` linked (EEXIST: the key is taken) and then removed.
    public func adopt(file path: String, as key: String, ifAbsent: Bool) throws -> Int64 {
        try ObjectKey.validate(key)
        try makeFolders(ObjectKey.folder(of: key), for: key)
        var st = stat()
        guard stat(path, &st) == 0, chmod(path, 0o600) == 0 else { throw failure("write", key, errno) }
        try place(path, as: key, ifAbsent: ifAbsent)
        try syncFolder(self.path(ofFolder: ObjectKey.folder(of: key)), for: key)
        return Int64(st.st_size)
    }

    /// Puts the finished file `temp` under the key: the last step of a write.
    func place(_ temp: String, as key: String, ifAbsent: Bool) throws {
        let final = root + "/" + key
        guard ifAbsent else {
            guard rename(temp, final) == 0 else { throw failure("write", key, errno) }
            return
        }
        // link(2) fails with EEXIST atomically if the key is taken.
        if link(temp, final) == 0 {
            unlink(temp)
            return
        }
        let code = errno
        if code == EEXIST { throw exists(key) }
        // A filesystem without hard links: check, then rename.
        guard [EPERM, EOPNOTSUPP, ENOSYS, EMLINK].contains(code) else { throw failure("write", key, code) }
        guard try head(key) == nil else { throw exists(key) }
        guard rename(temp, final) == 0 else { throw failure("write", key, errno) }
    }

    func exists(_ key: String) -> PGVaultError {
        PGVaultError(.io, "object '\(key)' already exists in '\(root)'; it is never overwritten", underlying: ObjectExistsError(key: key))
    }

    // MARK: - Folders

    /// Makes the folders of `folder` under the root (0700), each made durable
    /// in its parent.
    func makeFolders(_ folder: String, for key: String) throws {
        var path = root
        for segment in folder.split(separator: "/") {
            let parent = path
            path += "/" + segment
            if mkdir(path, 0o700) == 0 {
                try syncFolder(parent, for: key)
            } else if errno != EEXIST {
                throw failure("write", key, errno)
            }
        }
    }

    /// The folder `folder` ("" for the root) as a path.
    func path(ofFolder folder: String) -> String {
        folder.isEmpty ? root : root + "/" + folder
    }

    func syncFolder(_ path: String, for key: String) throws {
        if let deferredSync {
            deferredSync.folder(path)
            return
        }
        do {
            try Files.syncDirectory(path)
        } catch let error as FileError {
            throw failure("write", key, error.code)
        }
    }

    // MARK: - Errors

    /// The system's failure, with the key, the folder and what to do.
    func failure(_ doing: String, _ key: String, _ code: Int32) -> PGVaultError {
        let reason = String(cString: strerror(code))
        let fix = switch code {
        case ENOSPC, EDQUOT: ". The filesystem of '\(root)' is full: free space there or use another folder; nothing was written under that key"
        case EACCES, EPERM: "; check the owner and permissions of '\(root)' and the folders under it"
        case EROFS: "; '\(root)' is on a read-only filesystem: use a writable folder"
        case ENOENT where doing == "write": "; the folder '\(root)' does not exist: create it or check the path"
        default: ""
        }
        return PGVaultError(.io, "cannot \(doing) \(shown(key)): \(reason)\(fix)", underlying: SystemCallError(code: code))
    }

    /// The object as the user knows it: one inside an archive's hidden staging
    /// prefix (`.<name>.partial-<pid>/...`) is named by the archive it becomes,
    /// `<name> (member ...) (being written)`; the pid-decorated name is internal.
    func shown(_ key: String) -> String {
        let path = root + "/" + key
        let named = FileError.shown(path)
        return named == path ? "object '\(key)' in '\(root)'" : named
    }

    func missing(_ key: String) -> PGVaultError {
        PGVaultError(.archive, "no object '\(key)' in '\(root)'", underlying: MissingObjectError(key: key))
    }

    func beyondEnd(_ key: String, _ range: Range<Int64>, size: Int64) -> PGVaultError {
        PGVaultError(.archive, "object '\(key)' in '\(root)' is \(size) bytes, so bytes \(range.lowerBound)..<\(range.upperBound) of it cannot be read: it is shorter than its writer recorded (truncated or replaced)")
    }
}

/// The errno under a store's ``PGVaultError``, for callers and tests that ask
/// which (ENOSPC).
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public var description: String { String(cString: strerror(code)) }
}
