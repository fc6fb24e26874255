import Foundation
import PGClient
import Support

/// Where every chunk of a repository lies: the index objects `index/<pack id>`,
/// one per pack, written right after its pack (so a backup killed midway
/// leaves complete packs that the next backup finds and reuses), sealed with
/// the repository key (the writer reads them without an identity).
///
/// In memory: one ``Location`` per chunk in a dictionary keyed by its
/// ``ChunkID`` and a table of packs, about 120 bytes per chunk (measured in
/// docs/repository-format.md, "Memory"): the repository's chunks once, not a
/// copy per backup.
struct ChunkIndex {
    /// One chunk of a pack, as an index object lists it.
    struct Entry: Sendable, Equatable {
        var id: ChunkID
        var pack: String
        var offset: Int64
        var length: Int
        var rawLength: Int
    }

    struct Location: Sendable, Equatable {
        /// Into ``packs``.
        var pack: Int32
        var length: UInt32
        var rawLength: UInt32
        var offset: Int64
    }

    private(set) var packs: [Manifest.PackRef] = []
    private var packNumbers: [String: Int32] = [:]
    private(set) var chunks: [ChunkID: Location] = [:]
    /// Further places of chunks stored more than once: two backups that
    /// stored the same new chunk at once, or a repack interrupted before it
    /// deleted the packs it copied from. Rare, and gone at the next prune.
    private var elsewhere: [ChunkID: [Location]] = [:]

    static func objectKey(pack: String) -> String { "index/\(pack)" }

    subscript(id: ChunkID) -> Location? { chunks[id] }

    func pack(_ location: Location) -> Manifest.PackRef { packs[Int(location.pack)] }

    func packNumber(_ id: String) -> Int32? { packNumbers[id] }

    func entry(_ id: ChunkID) -> Entry? {
        chunks[id].map { Entry(id: id, pack: packs[Int($0.pack)].id, offset: $0.offset, length: Int($0.length), rawLength: Int($0.rawLength)) }
    }

    /// Is chunk `id` indexed in pack `pack` at `offset`, `length` bytes long
    /// (in its first place or another)? What a manifest says of it.
    func holds(_ id: ChunkID, pack: String, offset: Int64, length: Int) -> Bool {
        guard let number = packNumbers[pack], let first = chunks[id] else { return false }
        return ([first] + (elsewhere[id] ?? [])).contains { $0.pack == number && $0.offset == offset && Int($0.length) == length }
    }

    /// Every place of every chunk, first places and the others: what
    /// `check --read-data` reads.
    var everyPlace: [(ChunkID, Location)] {
        Array(chunks) + elsewhere.flatMap { id, places in places.map { (id, $0) } }
    }

    /// Adds a finished pack and its chunks. A chunk already indexed keeps its
    /// first place for new backups to refer to; the others are remembered
    /// for ``holds(_:pack:offset:length:)``.
    mutating func add(pack: Manifest.PackRef, entries: [Entry]) {
        let number: Int32
        if let known = packNumbers[pack.id] {
            number = known
            packs[Int(number)] = pack
        } else {
            number = Int32(packs.count)
            packs.append(pack)
            packNumbers[pack.id] = number
        }
        for e in entries {
            let location = Location(pack: number, length: UInt32(e.length), rawLength: UInt32(e.rawLength), offset: e.offset)
            if let first = chunks[e.id] {
                if first != location { elsewhere[e.id, default: []].append(location) }
            } else {
                chunks[e.id] = location
            }
        }
    }

    // MARK: - Index objects

    private struct Object: Codable {
        var format = "pgvault-index"
        var pack: String
        var size: Int64
        var headerBytes: Int
        /// `[id, offset, length, rawLength]` per chunk.
        var chunks: [[String]]
    }

    static func encode(pack: Manifest.PackRef, entries: [Entry], key: RepositoryKey) throws -> [UInt8] {
        let object = Object(pack: pack.id, size: pack.size, headerBytes: pack.headerBytes,
                            chunks: entries.map { [$0.id.description, String($0.offset), String($0.length), String($0.rawLength)] })
        return try Sealing.seal(Array(try JSONEncoder().encode(object)), key: key, objectKey: objectKey(pack: pack.id))
    }

    static func decode(_ bytes: [UInt8], objectKey: String, key: RepositoryKey, location: String) throws -> (Manifest.PackRef, [Entry]) {
        let plain = try Sealing.open(bytes, key: key, objectKey: objectKey, location: location)
        guard let object = try? JSONDecoder().decode(Object.self, from: Data(plain)), object.format == "pgvault-index" else {
            throw PGVaultError.archive("\(location)/\(objectKey) is not a pgvault index object; run `pgvault check --repo \(location)`")
        }
        let pack = Manifest.PackRef(id: object.pack, size: object.size, headerBytes: object.headerBytes)
        let entries = try object.chunks.map { c -> Entry in
            guard c.count == 4, let id = ChunkID(hex: c[0]), let offset = Int64(c[1]), let length = Int(c[2]), let raw = Int(c[3]) else {
                throw PGVaultError.archive("\(location)/\(objectKey) has a malformed entry; run `pgvault check --repo \(location)`")
            }
            return Entry(id: id, pack: object.pack, offset: offset, length: length, rawLength: raw)
        }
        return (pack, entries)
    }

    /// Reads every index object of the repository.
    static func load(_ repository: ChunkRepository) throws -> ChunkIndex {
        var index = ChunkIndex()
        for object in try repository.store.list(prefix: "index/") {
            try Cancellation.check()
            let bytes = try repository.store.bytes(of: object.key, limit: 64 << 20)
            let (pack, entries) = try decode(bytes, objectKey: object.key, key: repository.key, location: repository.store.location)
            index.add(pack: pack, entries: entries)
        }
        return index
    }
}
