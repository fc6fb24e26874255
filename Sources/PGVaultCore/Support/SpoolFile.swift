import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An unlinked temporary file (in TMPDIR, mode 0600), written once through a
/// buffer, then read back: line by line (``forEachLine(_:)``), or by ranges
/// from any thread once ``sealed()``. Nothing is left on disk however the
/// process ends. Closed when dropped.
final class SpoolFile {
    private let fd: Int32
    private let folder: String
    private var pending: [UInt8] = []
    /// Bytes appended so far: where the next append starts.
    private(set) var size: Int64 = 0
    private static let chunk = 256 * 1024

    /// `purpose` goes into the file's name (`.pgvault-<purpose>-XXXXXX`).
    init(purpose: String = "export") throws {
        folder = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((folder + "/.pgvault-\(purpose)-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { name in
            let fd = mkstemp(name.baseAddress!)
            if fd >= 0 { unlink(name.baseAddress!) }
            return fd
        }
        guard fd >= 0 else { throw Self.failure("create a temporary file in", folder) }
        self.fd = fd
        pending.reserveCapacity(Self.chunk)
    }

    deinit { close(fd) }

    func append(_ data: UnsafeRawBufferPointer) throws {
        pending.append(contentsOf: data)
        size += Int64(data.count)
        if pending.count >= Self.chunk { try flush() }
    }

    func finishWriting() throws { try flush() }

    private func flush() throws {
        try pending.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.failure("write a temporary file in", folder)
                }
                offset += n
            }
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with each line, without its line feed, in order.
    func forEachLine(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw Self.failure("rewind a temporary file in", folder) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.chunk, alignment: 16)
        defer { buffer.deallocate() }
        var lines = LineSplitter()
        while true {
            let n = read(fd, buffer, Self.chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.failure("read a temporary file in", folder)
            }
            if n == 0 { break }
            try lines.feed(UnsafeRawBufferPointer(start: buffer, count: n), line: body)
        }
        try lines.finish(line: body)
    }

    /// Everything written, to be read by ranges from any thread. The spool
    /// takes no more appends after this.
    func sealed() throws -> SealedSpool {
        try flush()
        let copy = dup(fd)
        guard copy >= 0 else { throw Self.failure("reopen a temporary file in", folder) }
        return SealedSpool(fd: copy, folder: folder)
    }

    static func failure(_ operation: String, _ folder: String, code: Int32 = errno) -> PGVaultError {
        .io("cannot \(operation) \(folder): \(String(cString: strerror(code))); free space there, or point TMPDIR at a folder with room")
    }
}

/// A ``SpoolFile`` written to its end: read-only, by position (`pread`), so
/// any number of threads read it at once.
final class SealedSpool: Sendable {
    private let fd: Int32
    private let folder: String

    fileprivate init(fd: Int32, folder: String) {
        self.fd = fd
        self.folder = folder
    }

    deinit { close(fd) }

    /// `count` bytes from `offset`.
    func read(offset: Int64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < count {
                let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SpoolFile.failure("read a temporary file in", folder)
                }
                if n == 0 { throw PGVaultError.io("a temporary file in \(folder) ended early (\(offset + Int64(done)) of \(offset + Int64(count)) bytes); was it truncated?") }
                done += n
            }
        }
        return bytes
    }
}
