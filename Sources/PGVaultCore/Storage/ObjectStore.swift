import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where pgvault keeps what it writes: a flat space of objects named by keys,
/// the model of S3 and its kin, so that a local folder and an object store are
/// two implementations of one contract (docs/storage.md).
///
/// - Keys are `/`-separated relative names (``ObjectKey``): `chat-X/data/u00001.copy.zst`.
/// - A write (``writer(for:ifAbsent:)``, or ``put(_:ifAbsent:_:)`` around
///   it) is atomic: the object appears whole or not at all, and replaces an
///   older one of the same key whole (or, `ifAbsent`, fails). There is no append and no
///   rename: a set of objects that must appear together is written with its
///   last object as the commit (a backup exists once its `manifest.json` does).
/// - A listing may lag behind writes and deletes (S3 lists a new object a
///   little later): callers decide from the object that commits a set, read
///   with ``get(_:range:_:)`` or ``head(_:)``, never from a listing alone.
///
/// Every call blocks its thread (file or network I/O): call it from a worker
/// thread (`Blocking.run`), never on the cooperative pool. The store's own
/// failures are ``PGVaultError``s naming the key, the store and the fix
/// (`.io` for a write or read that failed, `.archive` for an object that is
/// missing or shorter than asked); errors thrown by the caller's closures pass
/// through unchanged.
public protocol ObjectStore: Sendable {
    /// Where the store is, for messages: a folder, or `s3://bucket/prefix`.
    var location: String { get }

    /// Starts writing the object `key`: bytes go in with the writer's
    /// `write`, and the object appears, whole, at its `commit()`; until then
    /// (and for ever if the writer is aborted or dropped) there is no object
    /// and nothing is left behind. `ifAbsent`: the commit fails if an object
    /// `key` exists (S3's `If-None-Match: *`), for names that must never be
    /// overwritten; otherwise it replaces that object whole.
    func writer(for key: String, ifAbsent: Bool) throws -> any ObjectWriter

    /// Streams the object `key`, or the bytes `range` of it, to `consume` in
    /// chunks. A missing object throws an error with ``PGVaultError/isMissingObject``;
    /// a range that reaches past the object's end throws (a truncated object
    /// is never read as a short one).
    func get(_ key: String, range: Range<Int64>?, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws

    /// The object's key and size, or nil if there is no object `key`.
    func head(_ key: String) throws -> ObjectInfo?

    /// The objects whose keys start with `prefix` (a string prefix: `chat-X/`,
    /// `cold/`, or "" for all), sorted by key. `delimited`: only the objects
    /// directly under the prefix's last `/`, and the names of the "folders"
    /// below it as ``ObjectListing/prefixes`` (S3's delimiter `/`). May lag
    /// behind writes and deletes; a prefix with no objects may or may not be
    /// listed (a local folder lists an empty folder, S3 does not).
    func list(prefix: String, delimited: Bool) throws -> ObjectListing

    /// Removes the object `key`. A missing object is not an error (a delete
    /// that is repeated after an interruption succeeds).
    func delete(_ key: String) throws

    /// Makes the finished local file `path` the object `key` and removes the
    /// file (an export package that libarchive wrote to a file of its own):
    /// for a remote store an upload, for a local folder on the same
    /// filesystem a rename or link, without a copy. `ifAbsent` as for
    /// ``writer(for:ifAbsent:)``. Returns the object's size.
    func adopt(file path: String, as key: String, ifAbsent: Bool) throws -> Int64

    /// The object's path on this machine, if the store is a local folder: for
    /// the readers that need a file (libarchive's seeking tar reader). nil for
    /// a remote store.
    func localPath(of key: String) -> String?

    /// Discards what writes that were never committed left in the store
    /// (S3: multipart uploads that a failed or killed run could not abort,
    /// whose parts are stored and billed but are no object). Returns how
    /// many. Only while no writer of the store can be running: `prune`,
    /// under the repository's exclusive lock.
    func discardUnfinishedWrites() throws -> Int
}

/// An object being written, by one thread at a time (it may be handed from
/// one thread to another, as a compression pipeline does). S3: a multipart
/// upload; a local folder: a temporary file renamed at the commit.
public protocol ObjectWriter: AnyObject {
    var key: String { get }
    /// Bytes written so far.
    var bytesWritten: Int64 { get }
    /// Appends `bytes` to the object being written (not to a visible object:
    /// the store has no append).
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the object visible, whole and durable; returns its size.
    @discardableResult
    func commit() throws -> Int64
    /// Discards what was written. Dropping a writer without a commit does the same.
    func abort()
}

/// One object: its key and its size in bytes.
public struct ObjectInfo: Sendable, Equatable {
    public var key: String
    public var size: Int64

    public init(key: String, size: Int64) {
        self.key = key
        self.size = size
    }
}

/// What ``ObjectStore/list(prefix:delimited:)`` found.
public struct ObjectListing: Sendable, Equatable {
    public var objects: [ObjectInfo]
    /// With `delimited`: the sub-prefixes, each ending in `/` (`chat-X/`).
    public var prefixes: [String]

    public init(objects: [ObjectInfo], prefixes: [String] = []) {
        self.objects = objects
        self.prefixes = prefixes
    }
}

extension ObjectStore {
    /// Any store: the file streamed through ``put(_:ifAbsent:_:)`` (read as
    /// an object of its own folder), then removed.
    public func adopt(file path: String, as key: String, ifAbsent: Bool) throws -> Int64 {
        let folder = (path as NSString).deletingLastPathComponent
        let source = LocalFolderStore(root: folder.isEmpty ? "." : folder)
        let size = try put(key, ifAbsent: ifAbsent) { write in
            try source.get((path as NSString).lastPathComponent, write)
        }
        unlink(path)
        return size
    }

    public func localPath(of key: String) -> String? { nil }

    /// A store whose unfinished writes leave nothing that counts (a local
    /// folder's temporary files are no object, and listings skip them).
    public func discardUnfinishedWrites() throws -> Int { 0 }

    /// The whole object.
    public func get(_ key: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        try get(key, range: nil, consume)
    }

    /// Every object under `prefix`, recursively.
    public func list(prefix: String) throws -> [ObjectInfo] {
        try list(prefix: prefix, delimited: false).objects
    }

    /// Writes the object `key` from the bytes `body` hands to its `write`
    /// function, streamed, atomically (``writer(for:ifAbsent:)``). If `body`
    /// or a write throws, nothing is left. Returns the object's size.
    @discardableResult
    public func put(
        _ key: String, ifAbsent: Bool = false, _ body: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> Int64 {
        let writer = try writer(for: key, ifAbsent: ifAbsent)
        do {
            try body { try writer.write($0) }
            return try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Writes a small object from memory.
    @discardableResult
    public func put(_ key: String, bytes: [UInt8], ifAbsent: Bool = false) throws -> Int64 {
        try put(key, ifAbsent: ifAbsent) { write in try bytes.withUnsafeBytes { try write($0) } }
    }

    /// Reads a small object into memory, refusing one larger than `limit`
    /// bytes (a manifest, a marker: never a data object).
    public func bytes(of key: String, limit: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        try get(key) { chunk in
            guard out.count + chunk.count <= limit else {
                throw PGVaultError.archive("object '\(key)' in '\(location)' is larger than \(limit) bytes; refusing to read it into memory")
            }
            out.append(contentsOf: chunk)
        }
        return out
    }

    /// The total size of the objects under `prefix`.
    public func size(of prefix: String) throws -> Int64 {
        try list(prefix: prefix).reduce(0) { $0 + $1.size }
    }
}

/// Underneath a ``PGVaultError`` for an object that does not exist.
public struct MissingObjectError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public var description: String { "no object '\(key)'" }
}

/// Underneath a ``PGVaultError`` for a write with `ifAbsent` whose key was taken.
public struct ObjectExistsError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public var description: String { "object '\(key)' already exists" }
}

extension PGVaultError {
    /// The store found no object under the key it was asked for.
    public var isMissingObject: Bool { underlying is MissingObjectError }
    /// A write with `ifAbsent` found the key taken.
    public var isExistingObject: Bool { underlying is ObjectExistsError }
}
