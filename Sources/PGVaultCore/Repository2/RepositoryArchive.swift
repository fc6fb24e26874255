import AgeFormat
import CryptoDigest
import Foundation
import PGClient
import ZstdStream

/// One backup of a format-2 repository, opened for reading: its
/// authenticated manifest, and the repository to read its chunks from.
public struct RepositoryBackup: Sendable {
    public let repository: ChunkRepository
    public let name: String
    public let manifest: Manifest
    /// Shared, while the backup is read: prune waits. ``release()`` ends it.
    let lock: RepositoryLock

    /// Opens backup `name` (or `latest`) under a shared lock; table data
    /// needs the identity of an encrypted repository, and so does its manifest.
    public static func open(_ name: String, in repository: ChunkRepository, command: String) throws -> RepositoryBackup {
        try repository.requireIdentity("reading a backup")
        let lock = try RepositoryLock.acquire(store: repository.store, kind: .shared, command: command)
        do {
            let resolved = try Snapshots.resolve(name, in: repository)
            return RepositoryBackup(repository: repository, name: resolved, manifest: try Snapshots.manifest(resolved, in: repository), lock: lock)
        } catch {
            try? lock.release()
            throw error
        }
    }

    /// The reading is over: the lock goes.
    public func release() { try? lock.release() }

    public var location: String { "\(repository.location) backup \(name)" }
}

/// Where an archive is read from: a directory or tar file, or a backup in a
/// format-2 repository. Each reader thread opens its own source from it.
public enum ArchiveLocation: Sendable, CustomStringConvertible {
    case path(String)
    case backup(RepositoryBackup)

    public func open() throws -> ArchiveSource {
        switch self {
        case .path(let path): return try Archive.open(path)
        case .backup(let backup): return try RepositoryArchive(backup)
        }
    }

    public var description: String {
        switch self {
        case .path(let path): return path
        case .backup(let backup): return backup.location
        }
    }
}

/// A repository backup read as an archive: `manifest.json` is its manifest,
/// and a member's bytes are its chunks, each fetched from its pack (a ranged
/// read of the age segments that hold it), decrypted, decompressed and
/// checked against its id (HMAC under the repository key) as it streams. So a flipped byte, a swapped chunk or a planted pack is
/// found, and named, before it reaches a database.
final class RepositoryArchive: ArchiveSource {
    let backup: RepositoryBackup
    let location: String
    private let reader: ChunkReader
    /// Every member by name: its chunks, stored size and SHA-256.
    private let members: [String: (chunks: [Manifest.ChunkRef], bytes: Int64, sha256: String)]

    init(_ backup: RepositoryBackup) throws {
        self.backup = backup
        location = backup.location
        reader = try ChunkReader(repository: backup.repository, packs: backup.manifest.packs ?? [])
        let m = backup.manifest
        var members: [String: (chunks: [Manifest.ChunkRef], bytes: Int64, sha256: String)] = [:]
        for member in m.schema?.members ?? [] {
            members[member.member] = (member.chunks ?? [], member.bytes, member.sha256)
        }
        for unit in m.units { members[unit.member] = (unit.chunks ?? [], unit.compressedBytes, unit.sha256) }
        self.members = members
    }

    func readMember(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if name == Manifest.memberName {
            try backup.manifest.encode(into: body)
            return
        }
        guard let member = members[name] else { throw MissingMemberError(reason: "backup \(backup.name) has no member \(name)") }
        try stream(name, chunks: member.chunks, sha256: member.sha256, onData: body)
    }

    /// The member's chunks in order, checked one by one, then its SHA-256.
    func stream(_ name: String, chunks: [Manifest.ChunkRef], sha256: String, onData: (UnsafeRawBufferPointer) throws -> Void) throws {
        let digest = try SHA2(.sha256)
        try reader.read(chunks, member: name) { bytes in
            try digest.update(bytes)
            try onData(bytes)
        }
        let actual = try digest.hexDigest()
        guard actual == sha256 else {
            throw PGVaultError.archive("member \(name) of \(location) is damaged: the SHA-256 of its chunks \(actual) differs from the manifest's \(sha256)")
        }
    }

    /// Every member, at its recorded size, whose packs are all present at
    /// their recorded sizes: a member with a missing or short pack is left
    /// out, so a restore's check of its members fails before the target changes.
    func listMembers() throws -> [(name: String, size: Int64)] {
        let packs = backup.manifest.packs ?? []
        var whole: [Bool] = []
        for pack in packs { whole.append(try backup.repository.store.head(pack.objectKey)?.size == pack.size) }
        var out: [(String, Int64)] = [(Manifest.memberName, Int64(try backup.manifest.encodedCount()))]
        for (name, member) in members.sorted(by: { $0.key < $1.key }) where member.chunks.allSatisfy({ $0.pack < whole.count && whole[$0.pack] }) {
            out.append((name, member.bytes))
        }
        return out
    }
}

/// Reads chunks out of packs. Per pack it keeps the age header's
/// payload key once read (a few hundred bytes); per chunk it holds the
/// fetched segments, the frame and zstd's output buffer. A member's chunks
/// are read ahead of their decoding (``ObjectReadAhead``: at most its window,
/// 16 MiB, fetched and not yet decoded).
final class ChunkReader {
    let repository: ChunkRepository
    let packs: [Manifest.PackRef]
    private var segmentReaders: [String: AgeRangeDecryptor] = [:]
    /// Chunk ids of what is read, computed as it streams.
    private let hmac: HMACSHA256Stream

    init(repository: ChunkRepository, packs: [Manifest.PackRef]) throws {
        self.repository = repository
        self.packs = packs
        hmac = try HMACSHA256Stream(key: repository.key.chunkIDKey)
    }

    /// The chunks of `member` in order, each checked against its id: their
    /// stored ranges are fetched ahead (adjacent ones by one request) while
    /// the earlier ones are decoded and consumed.
    func read(_ chunks: [Manifest.ChunkRef], member: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        var planned: [(chunk: Manifest.ChunkRef, pack: Manifest.PackRef, what: String)] = []
        var requests: [ObjectReadAhead.Request] = []
        for chunk in chunks {
            let (pack, what) = try locate(chunk, member: member)
            requests.append(ObjectReadAhead.Request(key: pack.objectKey, range: try storedRange(chunk, pack: pack, what: what)))
            planned.append((chunk, pack, what))
        }
        // A local folder answers in microseconds and the kernel reads ahead
        // on its own: a small window keeps the restore's memory in its bound
        // (64 MB at the default scale); an object store gets the large one.
        let ahead = repository.store is LocalFolderStore
            ? ObjectReadAhead(store: repository.store, requests: requests, windowBytes: ObjectReadAhead.localWindowBytes, maxRequestBytes: 1 << 20)
            : ObjectReadAhead(store: repository.store, requests: requests)
        defer { ahead.cancel() }
        for (chunk, pack, what) in planned {
            try Cancellation.check()
            let stored = try translatingRead(what) { try ahead.next() }
            try decode(try open(stored, chunk, pack: pack, what: what), chunk, what: what, consume)
        }
    }

    /// The chunk's stored zstd frame, as it lies in its pack (decrypted),
    /// after checking that it decompresses to the chunk its id names: what
    /// a repack copies into a new pack, so that it never carries damage on.
    func verifiedFrame(_ chunk: Manifest.ChunkRef, member: String) throws -> [UInt8] {
        let (pack, what) = try locate(chunk, member: member)
        let frame = try fetch(chunk, pack: pack, what: what)
        try decode(frame, chunk, what: what) { _ in }
        return frame
    }

    private func locate(_ chunk: Manifest.ChunkRef, member: String) throws -> (Manifest.PackRef, String) {
        guard chunk.pack >= 0, chunk.pack < packs.count, chunk.length >= 0, chunk.offset >= 0 else {
            throw PGVaultError.archive("member \(member) refers to pack #\(chunk.pack), which the manifest does not list; the manifest is damaged")
        }
        let pack = packs[chunk.pack]
        return (pack, "chunk \(chunk.id.prefix(16)) of member \(member) (pack \(pack.objectKey))")
    }

    private func decode(_ frame: [UInt8], _ chunk: Manifest.ChunkRef, what: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        // Handed on as it decompresses, hashed on the way: a chunk that does
        // not match its id fails the member at its end, and a loader's
        // transaction rolls back, as for a member whose SHA-256 differs.
        // Memory: the frame and zstd's output buffer, not the whole chunk.
        var produced = 0
        do {
            let decompressor = try ZstdDecompressor(maxOutputBytes: UInt64(chunk.rawLength) + 1)
            try frame.withUnsafeBytes {
                try decompressor.decompress($0) { piece in
                    produced += piece.count
                    try hmac.update(piece)
                    try consume(piece)
                }
            }
            try decompressor.finish()
        } catch let error as ZstdError {
            throw PGVaultError.archive("\(what) in \(repository.location) is damaged: \(error)")
        }
        let id = ChunkID(bytes: try hmac.finalize())
        guard produced == chunk.rawLength, id.description == chunk.id else {
            throw PGVaultError.archive("\(what) in \(repository.location) is damaged or was swapped: its content does not match its id; use another backup, and run `pgvault check --repo \(repository.location) --read-data`")
        }
    }

    /// The chunk's stored frame: a ranged read of the plaintext pack, or of
    /// the age segments that hold it, decrypted.
    private func fetch(_ chunk: Manifest.ChunkRef, pack: Manifest.PackRef, what: String) throws -> [UInt8] {
        let range = try storedRange(chunk, pack: pack, what: what)
        return try open(try translatingRead(what) { try read(pack.objectKey, range) }, chunk, pack: pack, what: what)
    }

    /// Where the chunk's frame lies in its pack object: its own bytes, or
    /// the age segments that hold them (the pack's header is read once).
    private func storedRange(_ chunk: Manifest.ChunkRef, pack: Manifest.PackRef, what: String) throws -> Range<Int64> {
        guard repository.config.encrypted else { return chunk.offset..<(chunk.offset + Int64(chunk.length)) }
        let reader = try segmentReader(pack, what: what)
        let range = try decrypting(what) { try reader.ciphertextRange(plaintext: plaintextRange(chunk), fileSize: Int(pack.size)) }
        return Int64(range.lowerBound)..<Int64(range.upperBound)
    }

    /// The frame out of the bytes of ``storedRange(_:pack:what:)``.
    private func open(_ stored: [UInt8], _ chunk: Manifest.ChunkRef, pack: Manifest.PackRef, what: String) throws -> [UInt8] {
        guard repository.config.encrypted else { return stored }
        let reader = try segmentReader(pack, what: what)
        return try decrypting(what) { try reader.decrypt(plaintext: plaintextRange(chunk), ciphertext: stored, fileSize: Int(pack.size)) }
    }

    private func plaintextRange(_ chunk: Manifest.ChunkRef) -> Range<Int> { Int(chunk.offset)..<(Int(chunk.offset) + chunk.length) }

    private func decrypting<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as AgeError {
            let location = repository.store.location
            throw PGVaultError.archive("\(what) in \(location) does not decrypt: \(error.detail); the pack is damaged or was changed. Use another backup, and run `pgvault check --repo \(location) --read-data`")
        }
    }

    private func segmentReader(_ pack: Manifest.PackRef, what: String) throws -> AgeRangeDecryptor {
        if let known = segmentReaders[pack.id] { return known }
        let prefix = try translatingRead(what) { try read(pack.objectKey, 0..<Int64(pack.headerBytes)) }
        let reader: AgeRangeDecryptor
        do { reader = try AgeRangeDecryptor(prefix: prefix, identities: repository.identities) } catch {
            throw PGVaultError.archive(ChunkRepository.identityMismatch(repository.identityFile, object: pack.objectKey, location: repository.location, error: error))
        }
        segmentReaders[pack.id] = reader
        return reader
    }

    private func read(_ key: String, _ range: Range<Int64>) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(range.count))
        try repository.store.get(key, range: range) { out.append(contentsOf: $0) }
        return out
    }

    /// A store's error for a missing or short pack, said as the chunk's.
    private func translatingRead<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as PGVaultError where error.kind == .archive {
            throw PGVaultError.archive("\(what) cannot be read from \(repository.location): \(error.message); the pack is missing or truncated. Use another backup, and run `pgvault check --repo \(repository.location)`")
        }
    }
}
