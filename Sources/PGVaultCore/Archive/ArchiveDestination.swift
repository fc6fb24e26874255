import Foundation

/// Where an archive's members are written: a prefix of an ``ObjectStore``,
/// each member one object (`<prefix>data/u00001.copy.zst`), written whole or
/// not at all through the store's writer. The backup engine and cold storage
/// write every member through it (docs/storage.md); what makes the set of
/// members an archive (the manifest last, then the local folder's rename of
/// its staging prefix) is the caller's step.
///
/// With `chunks`, a backup into a format-2 repository: members are not
/// objects but lists of chunks, stored deduplicated in the repository's packs
/// (``ChunkWriteSession``); the manifest records them.
public struct ArchiveDestination: Sendable {
    public let store: any ObjectStore
    /// Ends in `/`: `.chat-20260101T000000.000Z.partial-4242/`.
    public let prefix: String
    let chunks: ChunkWriteSession?

    public init(store: any ObjectStore, prefix: String) {
        self.store = store
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        chunks = nil
    }

    /// Members go as chunks into `session`'s repository.
    init(chunks session: ChunkWriteSession) {
        store = session.repository.store
        prefix = ""
        chunks = session
    }

    /// The members of the local staging folder `path`, as objects of the
    /// folder that holds it (the repository, or the folder of `--output`).
    /// `deferringSync`: their fsyncs wait for its ``DeferredSync/flush()``.
    public init(stagingFolder path: String, deferringSync: DeferredSync? = nil) {
        let parent = (path as NSString).deletingLastPathComponent
        self.init(
            store: LocalFolderStore(root: parent.isEmpty ? "." : parent, deferringSync: deferringSync),
            prefix: (path as NSString).lastPathComponent)
    }

    /// Starts the member `member` (`data/u00001.copy.zst`): it appears at
    /// its ``CompressedMember/finish()``.
    func member(_ member: String, level: Int32) throws -> CompressedMember {
        if let chunks { return CompressedMember(encoder: try ChunkingEncoder(session: chunks, level: level)) }
        return CompressedMember(encoder: try ZstdObjectEncoder(writer: store.writer(for: prefix + member, ifAbsent: false), level: level))
    }

    /// Writes manifest.json, streamed (at 10,000 partitions it is tens of
    /// MB; ``Manifest/encode(into:)``), whole or not at all.
    @discardableResult
    func put(_ manifest: Manifest) throws -> Int64 {
        try store.put(prefix + Manifest.memberName) { write in try manifest.encode(into: write) }
    }
}
