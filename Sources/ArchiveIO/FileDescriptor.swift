#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C `close`, reachable from types that have a `close` method.
private func closeDescriptor(_ fd: Int32) -> Int32 { close(fd) }

/// Owns one open file descriptor and closes it exactly once: explicitly with
/// `close()` (which reports errors, e.g. a delayed write failure) or else in
/// `deinit`.
struct FileDescriptor: ~Copyable {
    private(set) var raw: Int32
    /// What error messages call it.
    let path: String

    /// Wraps the result of `open`/`openat`, throwing for -1.
    init(_ raw: Int32, path: String, operation: @autoclosure () -> String) throws(ArchiveError) {
        guard raw >= 0 else {
            let code = errno
            throw .system(operation: operation(), path: path, errno: code)
        }
        self.raw = raw
        self.path = path
    }

    deinit {
        if raw >= 0 { _ = closeDescriptor(raw) }
    }

    /// Writes all of `buffer`, retrying after partial writes and EINTR.
    func writeAll(_ buffer: UnsafeRawBufferPointer) throws(ArchiveError) {
        var offset = 0
        while offset < buffer.count {
            let n = write(raw, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "write to", path: path, errno: errno)
            }
            offset += n
        }
    }

    func sync() throws(ArchiveError) {
        if fsync(raw) != 0 { throw .system(operation: "fsync", path: path, errno: errno) }
    }

    /// Closes now, reporting failure; the descriptor is released either way.
    mutating func close() throws(ArchiveError) {
        guard raw >= 0 else { return }
        let fd = raw
        raw = -1
        if closeDescriptor(fd) != 0 { throw .system(operation: "close", path: path, errno: errno) }
    }
}
