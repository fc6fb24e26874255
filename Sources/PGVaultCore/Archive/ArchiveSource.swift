import ArchiveIO
import CryptoDigest
import Foundation
import ZstdStream

/// Reads an archive in either form: a directory (members are files under it) or
/// a single tar file (members are tar entries). Each reader thread opens its own
/// source; a source is not shared between threads.
public protocol ArchiveSource: AnyObject {
    /// Where the archive is, for messages.
    var location: String { get }
    /// Streams one member's bytes to `body` in chunks. Throws if it is missing.
    func readMember(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Every member with its size (directories excluded).
    func listMembers() throws -> [(name: String, size: Int64)]
}

public enum Archive {
    /// Opens the archive at `path`: a directory, or a tar file.
    public static func open(_ path: String) throws -> ArchiveSource {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PGVaultError.archive("archive '\(path)' does not exist; check the path")
        }
        return isDir.boolValue ? DirectoryArchive(path) : TarArchive(path)
    }

    /// Opens the archive `name` of a store: the objects under `name/`, or the
    /// tar object `name` (a `.tar` key). A tar is read with libarchive, which
    /// wants a file: from a local folder only, for now (docs/storage.md).
    public static func open(_ name: String, in store: any ObjectStore) throws -> ArchiveSource {
        guard name.hasSuffix(".tar") else { return DirectoryArchive(store: store, prefix: name + "/") }
        guard let path = store.localPath(of: name) else {
            throw PGVaultError.archive("'\(store.location)/\(name)' is a tar archive in a remote store; pgvault reads tar archives from a local folder only: copy it to one, or back up in the directory form")
        }
        return TarArchive(path)
    }

    /// Reads and parses manifest.json.
    public static func manifest(of source: ArchiveSource) throws -> Manifest {
        try manifestAndDigest(of: source).manifest
    }

    /// Reads and parses manifest.json, with the SHA-256 of its bytes as
    /// read (what identifies the archive to a restore's journal). The bytes
    /// are decoded as they arrive (``ManifestReader``): at 10,000 partitions
    /// the document is 37 MB, never held whole.
    public static func manifestAndDigest(of source: ArchiveSource) throws -> (manifest: Manifest, sha256: String) {
        var reader = ManifestReader()
        let digest = try SHA2(.sha256)
        do {
            try source.readMember(Manifest.memberName) { chunk in
                try reader.feed(chunk, source: source.location)
                try digest.update(chunk)
            }
        } catch is MissingMemberError {
            throw PGVaultError.archive("'\(source.location)' is not a complete pgvault archive: it has no manifest.json (an interrupted backup never writes one); check the path, or use a complete backup (pgvault list --repo DIR)", wholeArchive: true)
        }
        return (try Manifest.decode(reader, source: source.location), try digest.hexDigest())
    }

    /// Streams a data unit's COPY text to `onData`, checking while it streams that
    /// the member's size and SHA-256 equal the manifest's and that the zstd
    /// stream is whole. On any mismatch it throws an error naming the member;
    /// a consumer loading rows must then roll back (the data it got is suspect).
    public static func streamUnit(
        _ unit: Manifest.Unit, from source: ArchiveSource,
        onData: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try streamMember(
            unit.member, expectedBytes: unit.compressedBytes, sha256: unit.sha256, from: source,
            maxOutput: UInt64(max(unit.rawBytes, 0)) + 1, onData: onData)
    }

    /// Like ``streamUnit`` for any zstd-compressed member.
    public static func streamMember(
        _ member: String, expectedBytes: Int64, sha256: String, from source: ArchiveSource,
        maxOutput: UInt64?, onData: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        // A repository backup's member is its chunks, each checked by its id,
        // and the SHA-256 of the raw stream (`RepositoryArchive`).
        if let repository = source as? RepositoryArchive {
            try repository.readMember(member, onData)
            return
        }
        let digest = try SHA2(.sha256)
        let decompressor = try ZstdDecompressor(maxOutputBytes: maxOutput)
        var seen: Int64 = 0
        do {
            try source.readMember(member) { chunk in
                seen += Int64(chunk.count)
                if seen > expectedBytes {
                    throw PGVaultError.archive("member \(member) is larger than the manifest says (\(expectedBytes) bytes)")
                }
                try digest.update(chunk)
                try decompressor.decompress(chunk, sink: onData)
            }
            guard seen == expectedBytes else {
                throw PGVaultError.archive("member \(member) is truncated: \(seen) of \(expectedBytes) bytes")
            }
            let actual = try digest.hexDigest()
            guard actual == sha256 else {
                throw PGVaultError.archive("member \(member) is damaged: SHA-256 \(actual) differs from the manifest's \(sha256)")
            }
            try decompressor.finish()
        } catch let error as ZstdError {
            throw PGVaultError.archive("member \(member) is damaged: \(error)")
        } catch let error as MissingMemberError {
            throw PGVaultError.archive("member \(member) is missing from \(source.location) (\(error.reason))")
        }
    }
}

struct MissingMemberError: Error {
    let reason: String
}

/// A directory archive: manifest.json, schema/, data/ under one prefix of a
/// store (a folder: the store of that folder, prefix ""). Members are objects,
/// read with the store's `get`.
final class DirectoryArchive: ArchiveSource {
    let location: String
    let store: any ObjectStore
    /// "" or the archive's name followed by `/`.
    let prefix: String

    /// The archive that is the folder `path`.
    convenience init(_ path: String) { self.init(store: LocalFolderStore(root: path), prefix: "") }

    init(store: any ObjectStore, prefix: String) {
        self.store = store
        self.prefix = prefix
        location = prefix.isEmpty ? store.location : store.location + "/" + String(prefix.dropLast())
    }

    func readMember(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try MemberPath.validate(name)
        // The consumer's errors pass through; the store's own failure to read
        // is the archive's, as it always was (a member that is a symlink, a
        // folder that cannot be read).
        var consumerError: (any Error)?
        do {
            try store.get(prefix + name) { chunk in
                do { try body(chunk) } catch {
                    consumerError = error
                    throw error
                }
            }
        } catch {
            if let consumerError { throw consumerError }
            if let error = error as? PGVaultError, error.isMissingObject {
                throw MissingMemberError(reason: "no file \(location)/\(name)")
            }
            throw PGVaultError.archive("\(error)")
        }
    }

    func listMembers() throws -> [(name: String, size: Int64)] {
        try store.list(prefix: prefix).map { (String($0.key.dropFirst(prefix.count)), $0.size) }
    }
}

/// A single-file archive: a pax tar of the same members (manifest.json last).
/// Its headers are indexed as they are read (``TarIndex``), each at most once,
/// and every member is read from its offset, so a restore of an archive with
/// thousands of members no longer scans from the start for each one.
final class TarArchive: ArchiveSource {
    let location: String
    private var index: TarIndex?
    private var file: TarMemberFile?

    init(_ path: String) { location = path }

    /// The index, read as far as `name` (to the end without one).
    private func indexed(until name: String?) throws -> (TarIndex, TarIndex.Member?) {
        var entries = 0
        do {
            let index = try self.index ?? TarIndex(path: location)
            self.index = index
            entries = index.entriesRead
            let member = try index.scan(until: name)
            return (index, member)
        } catch let error as ArchiveError {
            throw Self.explain(error, path: location, entriesRead: index?.entriesRead ?? entries)
        }
    }

    func readMember(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let member = try indexed(until: name).1 else {
            throw MissingMemberError(reason: "no entry \(name) in \(location)")
        }
        guard member.offset != nil else { return try scan(for: name, body) }
        do {
            if file == nil { file = try TarMemberFile(path: location) }
            try file!.read(member, into: body)
        } catch let error as ArchiveError {
            throw PGVaultError.archive("'\(location)' changed or was cut short while being read (member \(name)): \(error); copy it again from where it came from, or use another backup", wholeArchive: true)
        }
    }

    /// The member found by reading from the start: for a tar whose data
    /// libarchive cannot place (compressed, or a sparse entry).
    private func scan(for name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var entries = 0
        do {
            let reader = try ArchiveReader(path: location)
            while let entry = try reader.nextEntry() {
                entries += 1
                if entry.path == name && entry.type == .regularFile {
                    try reader.readData(into: body)
                    return
                }
                try reader.skipData()
            }
        } catch let error as ArchiveError {
            throw Self.explain(error, path: location, entriesRead: entries)
        }
        throw MissingMemberError(reason: "no entry \(name) in \(location)")
    }

    func listMembers() throws -> [(name: String, size: Int64)] {
        try indexed(until: nil).0.members.map { ($0.name, $0.size) }
    }

    /// libarchive's failure in terms of the path the user gave: a file that is
    /// no tar at all, or a tar that ends early. libarchive's own words are kept,
    /// its errno (meaningless here: -1, or EILSEQ for a binary file) is not.
    static func explain(_ error: ArchiveError, path: String, entriesRead: Int) -> Error {
        switch error {
        case let .library(_, message, _, _, _) where entriesRead == 0:
            return PGVaultError.archive("'\(path)' is not a pgvault archive (not a tar file or archive directory): \(Self.sentence(message)); check the path", wholeArchive: true)
        case let .library(_, message, _, _, _):
            return PGVaultError.archive("'\(path)' is truncated or damaged after \(entriesRead) entries: \(Self.sentence(message)); copy it again from where it came from, or use another backup", wholeArchive: true)
        default:
            return error
        }
    }

    private static func sentence(_ text: String) -> String {
        text.trimmingCharacters(in: CharacterSet(charactersIn: ". \n"))
    }
}

/// Member names are relative paths of plain components; anything else is refused
/// before it reaches the filesystem.
enum MemberPath {
    static func validate(_ name: String) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }),
              !name.contains("\0"), !name.contains("\\") else {
            throw PGVaultError.archive("member name '\(name)' is not a plain relative path; refusing it")
        }
    }
}

/// Splits a byte stream into lines (COPY text rows end with one raw newline;
/// newlines inside values are escaped as \n), carrying a partial row between
/// chunks in a buffer that grows only to the longest row.
public struct LineSplitter {
    private var carry: [UInt8] = []

    public init() {}

    public mutating func feed(_ chunk: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard let base = chunk.baseAddress else { return }
        var start = 0
        let n = chunk.count
        while start < n {
            guard let found = memchr(base + start, 0x0A, n - start) else {
                carry.append(contentsOf: chunk[start..<n])
                return
            }
            let nl = base.distance(to: UnsafeRawPointer(found))
            if carry.isEmpty {
                try line(UnsafeRawBufferPointer(rebasing: chunk[start..<nl]))
            } else {
                carry.append(contentsOf: chunk[start..<nl])
                try carry.withUnsafeBytes { try line($0) }
                carry.removeAll(keepingCapacity: true)
            }
            start = nl + 1
        }
    }

    /// Bytes after the last newline (a complete stream has none).
    public var remainder: Int { carry.count }

    /// Hands over those bytes as a last line, if there are any.
    public mutating func finish(line: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard !carry.isEmpty else { return }
        try carry.withUnsafeBytes { try line($0) }
        carry.removeAll()
    }
}
