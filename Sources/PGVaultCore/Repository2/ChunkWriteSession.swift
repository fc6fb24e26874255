import AgeFormat
import CryptoDigest
import Foundation
import PGClient
import Support
import ZstdStream

/// A backup's writing into a format-2 repository: every member's chunks go
/// through ``store(_:compressor:)``, which stores a chunk only if the
/// repository lacks it. A chunk the repository has costs one HMAC: no
/// compression, no encryption, no write.
///
/// New chunks go into packs. A pack is checked out by one unit's thread for
/// one chunk and checked back in, so there are at most as many open packs
/// as units being written at once. A pack that reaches the target size is
/// finished (committed) and its index object written right after it; a chunk
/// in a pack still open is found by the next unit already (``pending``).
final class ChunkWriteSession: Sendable {
    let repository: ChunkRepository
    let parameters: ChunkerParameters
    private let recipients: [AgeRecipient]?
    private let state: Locked<State>

    struct State {
        var index: ChunkIndex
        /// Chunks in packs not finished yet.
        var pending: [ChunkID: ChunkIndex.Entry] = [:]
        var idle: [PackWriter] = []
        /// Packs this backup refers to, numbered in the order first met:
        /// ``Manifest/ChunkRef/pack`` is this number.
        var packNumbers: [String: Int] = [:]
        var statistics = Statistics()
    }

    /// What the backup added and what it found.
    struct Statistics: Sendable, Equatable {
        var newChunks = 0
        var reusedChunks = 0
        /// Stored (compressed) bytes of new chunks.
        var newBytes: Int64 = 0
        /// Bytes of the packs this backup finished.
        var packBytes: Int64 = 0
        var packs = 0
    }

    init(repository: ChunkRepository) throws {
        self.repository = repository
        parameters = try repository.config.chunkerParameters(key: repository.key)
        recipients = try repository.recipients()
        state = Locked(State(index: try ChunkIndex.load(repository)))
    }

    var statistics: Statistics { state.withLock { $0.statistics } }

    /// Stores one chunk (if new) and returns its reference. `compressor` is
    /// the calling unit's: one frame per chunk.
    func store(_ bytes: UnsafeRawBufferPointer, compressor: ZstdCompressor) throws -> Manifest.ChunkRef {
        let id = try repository.key.chunkID(of: bytes)
        if let known = state.withLock({ s -> ChunkIndex.Entry? in
            guard let entry = s.index.entry(id) ?? s.pending[id] else { return nil }
            s.statistics.reusedChunks += 1
            return entry
        }) {
            return reference(known)
        }
        // Compressed into the pack as zstd makes the frame: no frame buffer.
        let pack = try checkOut()
        let entry: ChunkIndex.Entry
        do {
            entry = try pack.append(id, rawLength: bytes.count) { write in
                try compressor.compress(bytes, sink: write)
                try compressor.finish(sink: write)
            }
        } catch {
            discard(pack)
            throw error
        }
        let full = state.withLock { s -> Bool in
            s.pending[id] = entry
            s.statistics.newChunks += 1
            s.statistics.newBytes += Int64(entry.length)
            if pack.plaintextBytes >= Int64(repository.config.packTargetBytes) { return true }
            s.idle.append(pack)
            return false
        }
        if full { try finish(pack) }
        return reference(entry)
    }

    /// The chunks of a unit an earlier backup stored, as references in this
    /// backup's numbering of packs; nil when one of them is no longer in the
    /// index (then the unit is read again).
    func reuse(_ refs: [Manifest.ChunkRef]) -> [Manifest.ChunkRef]? {
        let entries = state.withLock { s -> [ChunkIndex.Entry]? in
            var entries: [ChunkIndex.Entry] = []
            for ref in refs {
                guard let id = ChunkID(hex: ref.id), let entry = s.index.entry(id) ?? s.pending[id] else { return nil }
                entries.append(entry)
            }
            s.statistics.reusedChunks += entries.count
            return entries
        }
        return entries?.map(reference)
    }

    private func reference(_ entry: ChunkIndex.Entry) -> Manifest.ChunkRef {
        let number = state.withLock { s in
            if let n = s.packNumbers[entry.pack] { return n }
            let n = s.packNumbers.count
            s.packNumbers[entry.pack] = n
            return n
        }
        return Manifest.ChunkRef(id: entry.id.description, pack: number, offset: entry.offset, length: entry.length, rawLength: entry.rawLength)
    }

    private func checkOut() throws -> PackWriter {
        if let pack = state.withLock({ $0.idle.popLast() }) { return pack }
        return try PackWriter(store: repository.store, recipients: recipients)
    }

    /// Commits a pack, then its index object; from then on its chunks are indexed.
    private func finish(_ pack: PackWriter) throws {
        let ref: Manifest.PackRef
        do {
            try Cancellation.check()
            ref = try pack.finish()
            try repository.store.put(ChunkIndex.objectKey(pack: ref.id), bytes: try ChunkIndex.encode(pack: ref, entries: pack.entries, key: repository.key))
        } catch {
            discard(pack)
            throw error
        }
        state.withLock { s in
            s.index.add(pack: ref, entries: pack.entries)
            for e in pack.entries { s.pending[e.id] = nil }
            s.statistics.packs += 1
            s.statistics.packBytes += ref.size
        }
    }

    /// A pack that failed: nothing of it stays, and its chunks are no longer
    /// offered (a unit that took one fails with the backup anyway).
    private func discard(_ pack: PackWriter) {
        pack.abort()
        state.withLock { s in for e in pack.entries { s.pending[e.id] = nil } }
    }

    /// Every unit is done: finishes the open packs. Returns the table of the
    /// packs the backup's chunks refer to, in their numbers' order.
    func finish() throws -> [Manifest.PackRef] {
        while let pack = state.withLock({ $0.idle.popLast() }) {
            try finish(pack)
        }
        return try state.withLock { s in
            try s.packNumbers.sorted { $0.value < $1.value }.map { id, _ in
                guard let number = s.index.packNumber(id) else {
                    throw PGVaultError.io("pack \(id) was referred to but never finished")
                }
                return s.index.packs[Int(number)]
            }
        }
    }

    /// The backup failed: open packs are dropped (nothing of them is left).
    /// Packs already finished stay, indexed; the next backup reuses them, and
    /// prune removes those no backup refers to.
    func abort() {
        while let pack = state.withLock({ $0.idle.popLast() }) { pack.abort() }
    }
}

/// A member's encoder in a format-2 repository: raw bytes → SHA-256 and the
/// content-defined chunker → ``ChunkWriteSession/store(_:compressor:)``.
/// Memory: the chunker's buffer (up to the maximum chunk size) and one
/// compressed frame.
final class ChunkingEncoder: MemberEncoder {
    private let session: ChunkWriteSession
    private var chunker: Chunker
    private let compressor: ZstdCompressor
    private let sha: SHA2
    private var chunks: [Manifest.ChunkRef] = []
    private(set) var bytesWritten: Int64 = 0

    init(session: ChunkWriteSession, level: Int32) throws {
        self.session = session
        chunker = Chunker(parameters: session.parameters)
        compressor = try ZstdCompressor(level: level, checksum: true)
        sha = try SHA2(.sha256)
    }

    func encode(_ bytes: UnsafeRawBufferPointer) throws {
        try sha.update(bytes)
        try chunker.feed(bytes) { try take($0) }
    }

    private func take(_ chunk: Chunker.Chunk) throws {
        try Cancellation.check()
        let ref = try session.store(chunk.bytes, compressor: compressor)
        chunks.append(ref)
        bytesWritten += Int64(ref.length)
    }

    func finish() throws -> EncodedMember {
        try chunker.finish { try take($0) }
        return EncodedMember(bytes: bytesWritten, sha256: try sha.hexDigest(), chunks: chunks)
    }

    func abort() {}
}
