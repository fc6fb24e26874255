import CryptoDigest
import Foundation
import Support
import ZstdStream

/// What a member's bytes become (``MemberEncoder``) and what the manifest
/// records of them.
struct EncodedMember {
    /// Bytes stored: the member's size, or its chunks' stored sizes.
    var bytes: Int64
    /// SHA-256 of the member's bytes; of a chunked member, of its raw bytes.
    var sha256: String
    /// A member in a format-2 repository: its chunks, in order.
    var chunks: [Manifest.ChunkRef]?
}

/// Turns a member's raw bytes into what is stored: zstd into one object of
/// an archive (``ZstdObjectEncoder``), or content-defined chunks in a
/// format-2 repository (``ChunkingEncoder``). Used by one thread at a time.
protocol MemberEncoder: AnyObject {
    /// Bytes stored so far.
    var bytesWritten: Int64 { get }
    func encode(_ bytes: UnsafeRawBufferPointer) throws
    /// The member is whole: its last bytes are stored and committed.
    func finish() throws -> EncodedMember
    /// Nothing of the member is left (chunks already stored stay: other
    /// members may use them, and prune removes those no backup uses).
    func abort()
}

/// The member of an archive: zstd into an object of the archive's store (an
/// ``ObjectWriter``), with the SHA-256 of the compressed bytes. The object
/// appears at ``finish()``; a member that fails or is dropped before it
/// leaves nothing.
final class ZstdObjectEncoder: MemberEncoder {
    private let output: any ObjectWriter
    private let sha: SHA2
    private let compressor: ZstdCompressor

    init(writer: any ObjectWriter, level: Int32) throws {
        sha = try SHA2(.sha256)
        output = writer
        compressor = try ZstdCompressor(level: level, checksum: true)
    }

    var bytesWritten: Int64 { output.bytesWritten }

    func encode(_ bytes: UnsafeRawBufferPointer) throws {
        try compressor.compress(bytes, sink: write)
    }

    /// Compressed bytes: into the digest and the object.
    private func write(_ out: UnsafeRawBufferPointer) throws {
        try sha.update(out)
        try output.write(out)
    }

    func finish() throws -> EncodedMember {
        try compressor.finish(sink: write)
        try output.commit()
        return EncodedMember(bytes: output.bytesWritten, sha256: try sha.hexDigest(), chunks: nil)
    }

    func abort() { output.abort() }
}

/// A member being written, through its ``MemberEncoder`` (data units and the
/// schema scripts).
///
/// `UnitWriter.write` hands it to a `JobThread`. Its encoder needs no lock:
/// one thread at a time uses it (the reader before the job thread starts and
/// after it has closed, the job thread in between, the hand-overs ordered by
/// the job thread's own lock). That is the one thing the compiler cannot
/// check here, hence `@unchecked Sendable` (the C wrappers are not
/// `Sendable`). The buffers that move between the two threads do so through
/// `buffers`, a `Locked`. Compressed buffers come back emptied, as spares for
/// the reader to fill again, so the reader does not allocate a new one each time.
final class CompressedMember: @unchecked Sendable {
    private let encoder: any MemberEncoder
    /// Full buffers waiting for `compressNext()`, and emptied spares.
    private let buffers = Locked<(pending: [[UInt8]], spares: [[UInt8]])>(([], []))

    init(encoder: any MemberEncoder) {
        self.encoder = encoder
    }

    /// Bytes stored so far.
    var bytesWritten: Int64 { encoder.bytesWritten }

    static func emptyBuffer(_ capacity: Int) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(capacity + 64 * 1024)
        return buffer
    }

    func compress(_ bytes: UnsafeRawBufferPointer) throws {
        try encoder.encode(bytes)
    }

    /// Queues a full buffer for `compressNext()`.
    func hand(_ buffer: [UInt8]) {
        buffers.withLock { $0.pending.append(buffer) }
    }

    /// Compresses the oldest handed buffer, then keeps it as a spare.
    func compressNext() throws {
        guard var chunk = buffers.withLock({ $0.pending.isEmpty ? nil : $0.pending.removeFirst() }) else { return }
        try chunk.withUnsafeBytes { try compress($0) }
        chunk.removeAll(keepingCapacity: true)
        buffers.withLock { if $0.spares.count < 2 { $0.spares.append(chunk) } }
    }

    /// An emptied buffer that has been compressed, if one is ready.
    func spare() -> [UInt8]? {
        buffers.withLock { $0.spares.popLast() }
    }

    /// Ends the member: stored whole and durable.
    func finish() throws -> EncodedMember {
        try encoder.finish()
    }

    /// Discards the member: nothing of it is left. Once the job thread has
    /// stopped (the one-thread-at-a-time rule above).
    func abort() {
        encoder.abort()
    }
}
