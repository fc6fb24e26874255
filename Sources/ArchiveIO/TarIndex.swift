import CArchive
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where each regular file's data lies in a tar on disk, from one pass over
/// its headers (data is skipped by seeking, not read). With it, a member is
/// read straight from its offset instead of being found by scanning every
/// header before it: reading all n members of an archive costs n header reads,
/// not n²/2 (an archive with 10,000 partitions has 10,000 members).
///
/// Entry names pass the same safety checks as in ``ArchiveReader``. A member
/// whose data cannot be located (a compressed tar, a sparse entry) has no
/// offset; ``TarMemberFile`` cannot read it and the caller falls back to
/// ``ArchiveReader``.
public struct TarIndex: Sendable {
    public struct Member: Sendable, Equatable {
        public var name: String
        public var size: Int64
        /// Offset of the data in the file, if it is stored there in one piece.
        public var offset: Int64?
    }

    /// Regular files in archive order, duplicates included.
    public let members: [Member]
    /// The first member of each name (the one a scan from the start finds).
    private let first: [String: Int]

    /// Reads the headers of the tar at `path`. `entriesRead` is set to how far
    /// it got, for the caller's error message when it throws.
    public init(path: String, entriesRead: inout Int) throws {
        let reader = try ArchiveReader(path: path)
        var members: [Member] = []
        var first: [String: Int] = [:]
        while let entry = try reader.nextEntry() {
            entriesRead += 1
            if entry.type == .regularFile {
                if first[entry.path] == nil { first[entry.path] = members.count }
                members.append(Member(name: entry.path, size: entry.size ?? 0, offset: reader.currentDataOffset))
            }
            try reader.skipData()
        }
        self.members = members
        self.first = first
    }

    /// The first regular file named `name`, if any.
    public func member(_ name: String) -> Member? {
        first[name].map { members[$0] }
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
