import CArchive
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where each regular file's data lies in a tar on disk, read from its headers
/// as far as needed (data is skipped by seeking, not read) and remembered.
/// With it, a member is read straight from its offset instead of being found
/// by scanning every header before it: reading all n members of an archive
/// costs n header reads, not n²/2 (an archive with 10,000 partitions has
/// 10,000 members).
///
/// The headers are read only as far as the member asked for, as a scan from
/// the start would: an entry further on that ``ArchiveReader`` refuses (a
/// symbolic link in a pg_basebackup tar) does not stop a member before it
/// from being read. Entry names pass the same safety checks as in
/// ``ArchiveReader``. A member whose data cannot be located (a compressed tar,
/// a sparse entry) has no offset; ``TarMemberFile`` cannot read it and the
/// caller falls back to ``ArchiveReader``. One thread owns an instance.
public final class TarIndex {
    public struct Member: Sendable, Equatable {
        public var name: String
        public var size: Int64
        /// Offset of the data in the file, if it is stored there in one piece.
        public var offset: Int64?
    }

    /// Regular files read so far, in archive order, duplicates included.
    public private(set) var members: [Member] = []
    /// Entries read so far (directories included), for error messages.
    public private(set) var entriesRead = 0
    /// The first member of each name (the one a scan from the start finds).
    private var first: [String: Int] = [:]
    /// nil once the end is reached.
    private var reader: ArchiveReader?

    public init(path: String) throws {
        reader = try ArchiveReader(path: path)
    }

    /// The first regular file named `name`, reading headers until it is
    /// found; with no name, reads to the end and returns nil.
    @discardableResult
    public func scan(until name: String? = nil) throws -> Member? {
        if let name, let i = first[name] { return members[i] }
        while let reader {
            guard let entry = try reader.nextEntry() else {
                self.reader = nil
                break
            }
            entriesRead += 1
            var found = false
            if entry.type == .regularFile {
                if first[entry.path] == nil {
                    first[entry.path] = members.count
                    found = entry.path == name
                }
                members.append(Member(name: entry.path, size: entry.size ?? 0, offset: reader.currentDataOffset))
            }
            try reader.skipData()
            if found { return members.last }
        }
        return nil
    }
}

/// Reads members of a tar at the offsets a ``TarIndex`` found, with `pread`
/// through a fixed 64 KiB buffer. One thread owns an instance.
public final class TarMemberFile {
    private let file: FileDescriptor
    private let buffer: UnsafeMutableRawBufferPointer

    public init(path: String) throws {
        file = try FileDescriptor(open(path, O_RDONLY | O_CLOEXEC), path: path, operation: "open")
        buffer = .allocate(byteCount: ArchiveReader.bufferSize, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Streams `member`'s data to `sink`. Throws ``ArchiveError/sizeMismatch``
    /// if the file ends before the data does (a tar cut short after it was indexed).
    public func read(_ member: TarIndex.Member, into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let start = member.offset else {
            throw ArchiveError.misuse("member '\(member.name)' has no known offset; read it with ArchiveReader")
        }
        var done: Int64 = 0
        while done < member.size {
            let want = Int(min(Int64(buffer.count), member.size - done))
            let n = pread(file.raw, buffer.baseAddress, want, off_t(start + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.system(operation: "read", path: file.path, errno: errno)
            }
            if n == 0 { throw ArchiveError.sizeMismatch(entry: member.name, declared: member.size, actual: done) }
            done += Int64(n)
            try sink(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
        }
    }
}
