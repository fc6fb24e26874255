import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file being written: created owner-only (0600) and exclusively, written in
/// full, and fsynced by ``close()``. Errors name the path and the system's reason
/// (a full disk shows as "No space left on device").
public final class OutputFile {
    public let path: String
    private var fd: Int32
    public private(set) var bytesWritten: Int64 = 0

    public init(creating path: String) throws {
        self.path = path
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError(operation: "create", path: path) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "write", path: path)
            }
            offset += n
        }
        bytesWritten += Int64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// fsync, then close. The file is durable when this returns (without
    /// `sync`, only once something fsyncs it later: ``DeferredSync``).
    public func close(sync: Bool = true) throws {
        guard fd >= 0 else { return }
        defer { fd = -1 }
        guard !sync || fsync(fd) == 0 else {
            let error = FileError(operation: "fsync", path: path)
            Glibc.close(fd)
            throw error
        }
        guard Glibc.close(fd) == 0 else { throw FileError(operation: "close", path: path) }
    }
}

public struct FileError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let code: Int32

    public init(operation: String, path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String {
        var text = "cannot \(operation) \(Self.shown(path)): \(String(cString: strerror(code)))"
        if code == ENOSPC || code == EDQUOT { text += ". The output filesystem is full: free space or choose another --output; nothing incomplete was left under the final name" }
        return text
    }
}

extension FileError {
    /// The path as the user knows it: a hidden staging folder or file,
    /// `.<name>.partial-<pid>[.tar]`, is named by the archive it becomes,
    /// `<name> (being written)`. The pid-decorated name is internal.
    static func shown(_ path: String) -> String {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let i = parts.firstIndex(where: { RepositoryNames.partialPID($0) != nil }),
              let marker = parts[i].range(of: ".partial-", options: .backwards) else { return path }
        parts[i] = String(parts[i][parts[i].index(after: parts[i].startIndex)..<marker.lowerBound])
        let archive = parts[...i].joined(separator: "/")
        let inside = parts[(i + 1)...].joined(separator: "/")
        return archive + (inside.isEmpty ? "" : " (member \(inside))") + " (being written)"
    }
}

public enum Files {
    /// A fresh, empty, owner-only spool folder of this process under $TMPDIR
    /// (or /tmp): `pgvault-spool.partial-<pid>`. The spools of pgvault
    /// processes that no longer run (killed with SIGKILL, or by a crash, so
    /// their cleanup never ran) are removed first: one of `backup -o -` holds
    /// a whole backup in the clear.
    static func spoolFolder(in folder: String = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") throws -> String {
        let prefix = "pgvault-spool.partial-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { removeTree(folder + "/" + name) }
        }
        let path = folder + "/" + prefix + "\(getpid())"
        removeTree(path)
        try makeDirectory(path)
        return path
    }

    /// fsync a directory, so a rename or a new entry in it is durable.
    public static func syncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(operation: "open directory", path: path) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw FileError(operation: "fsync directory", path: path) }
    }

    /// Creates a directory owner-only (0700).
    public static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else { throw FileError(operation: "create directory", path: path) }
    }

    /// rename(2), then fsync of the destination's folder.
    public static func publish(_ from: String, as to: String) throws {
        guard rename(from, to) == 0 else { throw FileError(operation: "rename \(from) to", path: to) }
        try syncDirectory((to as NSString).deletingLastPathComponent.isEmpty ? "." : (to as NSString).deletingLastPathComponent)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// The system's reason for a Foundation file error ("No such file or
    /// directory"), without Foundation's dump of domain, code and user info.
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        switch ns.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return String(cString: strerror(ENOENT))
        case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return String(cString: strerror(EACCES))
        case NSFileReadInapplicableStringEncodingError: return "it is not valid UTF-8"
        default: return "it cannot be read"
        }
    }

    /// Removes a file or a directory tree; errors are ignored (cleanup paths).
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
