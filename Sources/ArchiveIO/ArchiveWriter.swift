import CArchive
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Archive formats ArchiveIO writes (and reads).
public enum ArchiveFormat: Sendable, Equatable {
    /// POSIX pax ("restricted": plain ustar headers unless a pax extension is
    /// needed, e.g. for long or non-ASCII names or sizes ≥ 8 GiB).
    /// Entry sizes must be known before their data.
    case tarPax
    /// Zip (deflate). Entry sizes may be unknown (data descriptors follow the data).
    case zip
}

/// Writes a tar (pax) or zip archive, streaming: entry data goes through to
/// the output as it is written, and nothing accumulates in memory.
///
/// Usage: `addData(path:bytes:)`, `addFile(path:size:writer:)`,
/// `addDirectory(path:)`, or `beginEntry` / `write` / `endEntry`; then
/// `close()`, which writes the archive trailer and reports late errors
/// (a full disk shows up here). Every entry name is checked with the same
/// rule the reader enforces (`ArchiveError.invalidEntryName`).
///
/// An archive that was not `close()`d successfully is never completed: if the
/// writer is dropped after an error or without `close()`, it is marked failed
/// (`archive_write_fail`) so libarchive does not append a trailer that would
/// make a partial archive look whole. After any error, the writer refuses
/// further use.
///
/// Thread ownership: not `Sendable`. One thread (typically a dedicated worker
/// feeding a pipe or a file) creates, uses and drops an instance; create it
/// on that thread.
public final class ArchiveWriter {
    private enum State {
        case open
        case inEntry(name: String, declared: Int64?, written: Int64)
        case closed
        case failed(ArchiveError)
    }

    public let format: ArchiveFormat
    private let archive: ArchiveHandle
    /// The archive file when the writer created it (closed by the writer);
    /// nil when writing to a caller's descriptor (left open).
    private var file: FileDescriptor?
    private var state = State.open

    /// Creates a new archive file at `path` (which must not exist yet) with
    /// mode 0600, so only the owner can read the backup. `options` are
    /// libarchive's (`archive_write_set_options`), e.g. `"zip:compression-level=1"`;
    /// one it does not know is an error.
    public convenience init(path: String, format: ArchiveFormat, options: String? = nil) throws {
        try self.init(format: format, label: path)
        if let options {
            try archive.check(archive_write_set_options(archive.raw, options), "set options '\(options)' for")
        }
        // Fully initialized: if anything below throws, deinit frees the archive.
        let created = try FileDescriptor(
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600), path: path,
            operation: "create archive file"
        )
        let fd = created.raw
        file = consume created
        try startWriting(to: fd)
    }

    /// Writes to an already open descriptor (e.g. 1 for stdout, or a pipe).
    /// The descriptor stays open: closing it is the caller's job.
    public convenience init(fileDescriptor: Int32, format: ArchiveFormat, label: String? = nil) throws {
        try self.init(format: format, label: label ?? "fd \(fileDescriptor)")
        try startWriting(to: fileDescriptor)
    }

    private init(format: ArchiveFormat, label: String) throws {
        guard let raw = archive_write_new() else {
            throw ArchiveHandle.allocationFailure("archive_write_new", archive: label)
        }
        self.format = format
        self.archive = ArchiveHandle(raw, label: label)
        switch format {
        case .tarPax: try archive.check(archive_write_set_format_pax_restricted(raw), "select pax format for")
        case .zip: try archive.check(archive_write_set_format_zip(raw), "select zip format for")
        }
        // No padding of the last block: output may go to a pipe, and the
        // archive ends exactly after its trailer.
        try archive.check(archive_write_set_bytes_in_last_block(raw, 1), "set block padding for")
    }

    private func startWriting(to fd: Int32) throws {
        try guarded { try archive.check(archive_write_open_fd(archive.raw, fd), "open for writing") }
    }

    deinit {
        if case .closed = state { return }
        // Never let archive_free write a trailer after a failure or a missing close().
        archive_write_fail(archive.raw)
    }

    // MARK: Entries

    /// Starts a regular-file entry. `size` is required for `.tarPax`; for
    /// `.zip` nil means "unknown" (streamed with a data descriptor).
    /// `mtime` is in seconds since 1970; nil means now.
    public func beginEntry(path: String, size: Int64?, mode: UInt16 = 0o600, mtime: Int64? = nil) throws {
        try validate(path, isDirectory: false)
        try guarded {
            guard case .open = state else { throw ArchiveError.misuse("beginEntry('\(path)') while \(stateText)") }
            if size == nil && format == .tarPax {
                throw ArchiveError.misuse("tar entry '\(path)' needs its size before its data (pax headers come first)")
            }
            if let size, size < 0 { throw ArchiveError.misuse("negative size \(size) for entry '\(path)'") }
            try writeHeader(path: path, type: .regularFile, size: size, mode: mode, mtime: mtime)
            state = .inEntry(name: path, declared: size, written: 0)
        }
    }

    /// Appends data to the current entry.
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        try guarded {
            guard case let .inEntry(name, declared, written) = state else {
                throw ArchiveError.misuse("write of \(buffer.count) bytes with no entry begun (\(stateText))")
            }
            let total = written + Int64(buffer.count)
            if let declared, total > declared {
                throw ArchiveError.sizeMismatch(entry: name, declared: declared, actual: total)
            }
            var offset = 0
            while offset < buffer.count {
                let n = try archive.check(
                    archive_write_data(archive.raw, buffer.baseAddress! + offset, buffer.count - offset),
                    "write data to", entry: name
                )
                guard n > 0 else { throw archive.failure("write data to", entry: name) }
                offset += n
            }
            state = .inEntry(name: name, declared: declared, written: total)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Ends the current entry, checking that exactly the declared size was written.
    public func endEntry() throws {
        try guarded {
            guard case let .inEntry(name, declared, written) = state else {
                throw ArchiveError.misuse("endEntry() with no entry begun (\(stateText))")
            }
            if let declared, written != declared {
                throw ArchiveError.sizeMismatch(entry: name, declared: declared, actual: written)
            }
            try archive.check(archive_write_finish_entry(archive.raw), "finish entry in", entry: name)
            state = .open
        }
    }

    /// Adds a regular file whose data `writer` produces by calling the
    /// `write` function it is given, any number of times. For `.tarPax`
    /// `size` is required and must match exactly.
    public func addFile(
        path: String, size: Int64?, mode: UInt16 = 0o600, mtime: Int64? = nil,
        writer: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        try beginEntry(path: path, size: size, mode: mode, mtime: mtime)
        try guarded { try writer { try write($0) } }
        try endEntry()
    }

    /// Adds a regular file holding `bytes`.
    public func addData(path: String, bytes: [UInt8], mode: UInt16 = 0o600, mtime: Int64? = nil) throws {
        try beginEntry(path: path, size: Int64(bytes.count), mode: mode, mtime: mtime)
        try write(bytes)
        try endEntry()
    }

    /// Adds a directory entry.
    public func addDirectory(path: String, mode: UInt16 = 0o700, mtime: Int64? = nil) throws {
        try validate(path, isDirectory: true)
        try guarded {
            guard case .open = state else { throw ArchiveError.misuse("addDirectory('\(path)') while \(stateText)") }
            try writeHeader(path: path, type: .directory, size: 0, mode: mode, mtime: mtime)
            try archive.check(archive_write_finish_entry(archive.raw), "finish entry in", entry: path)
        }
    }

    /// Writes the trailer and flushes. When the writer created the archive
    /// file, it is also fsync'ed and closed here, and their errors reported.
    public func close() throws {
        try guarded {
            guard case .open = state else { throw ArchiveError.misuse("close() while \(stateText)") }
            try archive.check(archive_write_close(archive.raw), "finish writing")
            try file?.sync()
            try file?.close()
            state = .closed
        }
    }

    // MARK: Internals

    private func writeHeader(
        path: String, type: ArchiveEntryInfo.EntryType, size: Int64?, mode: UInt16, mtime: Int64?
    ) throws(ArchiveError) {
        let entry = try EntryHandle(archive)
        archive_entry_set_pathname_utf8(entry.raw, path)
        archive_entry_set_filetype(entry.raw, type.fileTypeBits)
        archive_entry_set_perm(entry.raw, mode_t(mode & 0o7777))
        archive_entry_set_mtime(entry.raw, time_t(mtime ?? Int64(time(nil))), 0)
        if let size {
            archive_entry_set_size(entry.raw, size)
        } else {
            archive_entry_unset_size(entry.raw)
        }
        try archive.check(archive_write_header(archive.raw, entry.raw), "write header to", entry: path)
    }

    /// Rejects names the reader would refuse. Nothing has been written yet,
    /// so this does not fail the writer.
    private func validate(_ path: String, isDirectory: Bool) throws(ArchiveError) {
        if let reason = EntryName.problem(with: path, isDirectory: isDirectory) {
            throw .invalidEntryName(name: path, reason: reason)
        }
        if !UTF8Locale.shared.isAvailable && path.utf8.contains(where: { $0 >= 0x80 }) {
            throw .invalidEntryName(
                name: path, reason: "is not ASCII, and no UTF-8 locale is installed for libarchive to store it with"
            )
        }
    }

    /// Runs `body` under the UTF-8 locale; any error it throws, except API
    /// misuse, leaves the writer failed for good.
    @discardableResult
    private func guarded<T>(_ body: () throws -> T) throws -> T {
        if case let .failed(earlier) = state {
            throw ArchiveError.misuse("writer used after an earlier error: \(earlier)")
        }
        do {
            return try UTF8Locale.shared.run(body)
        } catch {
            switch error {
            case ArchiveError.misuse: break // nothing was written
            case let error as ArchiveError: state = .failed(error)
            default: state = .failed(.misuse("the entry's data source failed: \(error)"))
            }
            throw error
        }
    }

    private var stateText: String {
        switch state {
        case .open: "no entry is open"
        case let .inEntry(name, _, _): "entry '\(name)' is still open"
        case .closed: "the archive is closed"
        case .failed: "the writer has failed"
        }
    }
}

/// Owns one `archive_entry*` and frees it exactly once.
final class EntryHandle {
    let raw: OpaquePointer

    init(_ archive: ArchiveHandle) throws(ArchiveError) {
        guard let raw = archive_entry_new2(archive.raw) else {
            throw ArchiveHandle.allocationFailure("archive_entry_new2", archive: archive.label)
        }
        self.raw = raw
    }

    deinit { archive_entry_free(raw) }
}
