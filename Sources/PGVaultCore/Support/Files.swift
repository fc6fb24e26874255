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

    /// fsync, then close. The file is durable when this returns.
    public func close() throws {
        guard fd >= 0 else { return }
        defer { fd = -1 }
        guard fsync(fd) == 0 else {
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
        var text = "cannot \(operation) \(path): \(String(cString: strerror(code)))"
        if code == ENOSPC || code == EDQUOT { text += ". The output filesystem is full: free space or choose another --output; nothing incomplete was left under the final name" }
        return text
    }
}

public enum Files {
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

    /// Removes a file or a directory tree; errors are ignored (cleanup paths).
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
