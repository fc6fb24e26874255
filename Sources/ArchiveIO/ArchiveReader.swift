import CArchive

/// One entry of an archive being read. Only regular files and directories
/// with safe names ever get this far.
public struct ArchiveEntryInfo: Sendable, Equatable {
    public enum EntryType: Sendable, Equatable {
        case regularFile
        case directory

        var fileTypeBits: mode_t {
            switch self {
            case .regularFile: FileType.regular
            case .directory: FileType.directory
            }
        }
    }

    /// The name as stored (UTF-8), relative to the archive root.
    public let path: String
    /// Data size when the archive declares it (a streamed zip may not).
    public let size: Int64?
    public let type: EntryType
    /// Permission bits as stored (the extractor does not apply them).
    public let mode: UInt16
    /// Modification time, seconds since 1970.
    public let mtime: Int64
}

/// libarchive's file type bits (`AE_IF*`, the classic POSIX values).
enum FileType {
    static let mask: mode_t = 0o170000
    static let regular: mode_t = 0o100000
    static let directory: mode_t = 0o040000
    static let symlink: mode_t = 0o120000
    static let socket: mode_t = 0o140000
    static let characterDevice: mode_t = 0o020000
    static let blockDevice: mode_t = 0o060000
    static let fifo: mode_t = 0o010000
}

/// Reads a tar (any libarchive-supported tar flavour, incl. pax) or zip
/// archive entry by entry, streaming each entry's data through a fixed
/// 64 KiB buffer.
///
/// Security: `nextEntry()` refuses (with `ArchiveError.unsafeEntry`) any entry
/// whose name is empty, absolute, contains a `..` component, a backslash or a
/// NUL, is not valid UTF-8, or that is a symbolic link, hard link, device,
/// FIFO or socket. After such an entry, or any other error, the reader
/// refuses further use: a suspicious archive is not read any further.
///
/// Thread ownership: not `Sendable`. One thread creates, uses and drops an
/// instance; create it on that thread.
public final class ArchiveReader {
    public static let bufferSize = 64 * 1024

    private let archive: ArchiveHandle
    private let buffer: UnsafeMutableRawBufferPointer
    private var current: ArchiveEntryInfo?
    /// Where the current entry's data starts in the file, when it lies there
    /// as is, in one piece: an uncompressed tar, not a sparse entry (see
    /// ``TarIndex``). nil for a zip, a compressed tar, or a sparse entry.
    public private(set) var currentDataOffset: Int64?
    private var failure: ArchiveError?
    private var finished = false

    /// Opens the archive file at `path`.
    public convenience init(path: String) throws {
        try self.init(label: path)
        try startReading { archive_read_open_filename($0, path, Self.bufferSize) }
    }

    /// Reads from an open descriptor (e.g. 0 or a pipe). The descriptor stays
    /// open: closing it is the caller's job.
    public convenience init(fileDescriptor: Int32, label: String? = nil) throws {
        try self.init(label: label ?? "fd \(fileDescriptor)")
        try startReading { archive_read_open_fd($0, fileDescriptor, Self.bufferSize) }
    }

    private init(label: String) throws {
        guard let raw = archive_read_new() else {
            throw ArchiveHandle.allocationFailure("archive_read_new", archive: label)
        }
        archive = ArchiveHandle(raw, label: label)
        buffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
        // Fully initialized: if anything below throws, deinit frees both.
        try archive.check(archive_read_support_format_tar(raw), "enable tar support for")
        try archive.check(archive_read_support_format_zip(raw), "enable zip support for")
    }

    deinit {
        buffer.deallocate()
    }

    private func startReading(_ open: (OpaquePointer) -> Int32) throws {
        try guarded { try archive.check(open(archive.raw), "open") }
    }

    /// The next entry, or nil at the end of the archive.
    public func nextEntry() throws -> ArchiveEntryInfo? {
        try guarded {
            current = nil
            currentDataOffset = nil
            if finished { return nil }
            var entry: OpaquePointer?
            let rc = try archive.check(archive_read_next_header(archive.raw, &entry), "read the next header of")
            guard rc != ARCHIVE_EOF else {
                finished = true
                return nil
            }
            guard let entry else { throw archive.failure("read the next header of", entry: nil) }
            let info = try Self.describe(entry)
            current = info
            currentDataOffset = Self.contiguousDataOffset(archive.raw, entry)
            return info
        }
    }

    /// Streams the current entry's data to `sink` in chunks of at most
    /// `bufferSize` bytes. Does nothing for directories.
    public func readData(into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try guarded {
            guard let info = current else {
                throw ArchiveError.misuse("readData() with no current entry (call nextEntry() first)")
            }
            guard info.type == .regularFile else { return }
            var total: Int64 = 0
            while true {
                let n = try archive.check(
                    archive_read_data(archive.raw, buffer.baseAddress, buffer.count), "read data from", entry: info.path
                )
                if n == 0 { break }
                total += Int64(n)
                try sink(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
            }
            current = nil // the data is consumed; a second read would see nothing
            if let size = info.size, size != total {
                throw ArchiveError.sizeMismatch(entry: info.path, declared: size, actual: total)
            }
        }
    }

    /// Skips the current entry's data (also done implicitly by `nextEntry()`).
    public func skipData() throws {
        try guarded {
            guard let info = current else { return }
            try archive.check(archive_read_data_skip(archive.raw), "skip data in", entry: info.path)
            current = nil
        }
    }

    // MARK: Internals

    /// Right after a tar header is read, libarchive's reader has consumed
    /// exactly the headers (pax extensions included) and none of the data, so
    /// the bytes it has consumed are the data's offset. Only for a tar read
    /// through no decompression filter, and an entry that is not sparse (whose
    /// data would be stored in pieces).
    private static func contiguousDataOffset(_ raw: OpaquePointer, _ entry: OpaquePointer) -> Int64? {
        guard archive_format(raw) & ARCHIVE_FORMAT_BASE_MASK == ARCHIVE_FORMAT_TAR,
              archive_filter_count(raw) == 1, archive_filter_code(raw, 0) == ARCHIVE_FILTER_NONE,
              archive_entry_sparse_count(entry) == 0 else { return nil }
        let offset = archive_filter_bytes(raw, 0)
        return offset >= 0 ? offset : nil
    }

    /// Checks an entry against the safety rules and converts it.
    private static func describe(_ entry: OpaquePointer) throws(ArchiveError) -> ArchiveEntryInfo {
        let rawName = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry)
        guard let rawName else { throw .unsafeEntry(name: "", reason: "has no name") }
        guard let name = String(validatingCString: rawName) else {
            throw .unsafeEntry(name: String(cString: rawName), reason: "has a name that is not valid UTF-8")
        }
        if let target = archive_entry_hardlink_utf8(entry) ?? archive_entry_hardlink(entry) {
            throw .unsafeEntry(name: name, reason: "is a hard link (to '\(String(cString: target))')")
        }
        let type: ArchiveEntryInfo.EntryType
        switch archive_entry_filetype(entry) & FileType.mask {
        case FileType.regular: type = .regularFile
        case FileType.directory: type = .directory
        case FileType.symlink:
            let target = (archive_entry_symlink_utf8(entry) ?? archive_entry_symlink(entry)).map { String(cString: $0) }
            throw .unsafeEntry(name: name, reason: "is a symbolic link (to '\(target ?? "?")')")
        case FileType.characterDevice, FileType.blockDevice:
            throw .unsafeEntry(name: name, reason: "is a device node")
        case FileType.fifo: throw .unsafeEntry(name: name, reason: "is a FIFO")
        case FileType.socket: throw .unsafeEntry(name: name, reason: "is a socket")
        case let other:
            throw .unsafeEntry(name: name, reason: "has an unsupported file type (mode \(String(other, radix: 8)))")
        }
        if let reason = EntryName.problem(with: name, isDirectory: type == .directory) {
            throw .unsafeEntry(name: name, reason: reason)
        }
        return ArchiveEntryInfo(
            path: name,
            size: archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : nil,
            type: type,
            mode: UInt16(truncatingIfNeeded: archive_entry_perm(entry)),
            mtime: Int64(archive_entry_mtime(entry))
        )
    }

    /// Runs `body`; an error from libarchive or the safety checks leaves the
    /// reader failed, and later calls rethrow it.
    /// Misuse errors leave the reader as it was. Runs under the UTF-8 locale.
    @discardableResult
    private func guarded<T>(_ body: () throws -> T) throws -> T {
        if let failure { throw failure }
        do {
            return try UTF8Locale.shared.run(body)
        } catch let error as ArchiveError {
            if case .misuse = error {} else { failure = error }
            throw error
        }
    }
}
