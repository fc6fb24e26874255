import CryptoDigest
import Foundation
import Support
import ZstdStream

/// A member being written: zstd into an object of the archive's store (an
/// ``ObjectWriter``), with the SHA-256 of the compressed bytes (data units
/// and the schema scripts). The object appears at ``finish()``; a member
/// that fails or is dropped before it leaves nothing.
///
/// `UnitWriter.write` hands it to a `JobThread`. Its compressor, digest and
/// file need no lock: one thread at a time uses them (the reader before the
/// job thread starts and after it has closed, the job thread in between, the
/// hand-overs ordered by the job thread's own lock). That is the one thing the
/// compiler cannot check here, hence `@unchecked Sendable` (the C wrappers
/// are not `Sendable`). The buffers that move between the two threads do so
/// through `buffers`, a `Locked`. Compressed buffers come back emptied, as
/// spares for the reader to fill again, so the reader does not allocate a new
/// one each time.
final class CompressedMember: @unchecked Sendable {
    let output: any ObjectWriter
    let sha: SHA2
    private let compressor: ZstdCompressor
    /// Full buffers waiting for `compressNext()`, and emptied spares.
    private let buffers = Locked<(pending: [[UInt8]], spares: [[UInt8]])>(([], []))

    init(writer: any ObjectWriter, level: Int32) throws {
        sha = try SHA2(.sha256)
        output = writer
        compressor = try ZstdCompressor(level: level, checksum: true)
    }

    /// Compressed bytes written so far.
    var bytesWritten: Int64 { output.bytesWritten }

    static func emptyBuffer(_ capacity: Int) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(capacity + 64 * 1024)
        return buffer
    }

    func compress(_ bytes: UnsafeRawBufferPointer) throws {
        try compressor.compress(bytes, sink: write)
    }

    /// Compressed bytes: into the digest and the object.
    private func write(_ out: UnsafeRawBufferPointer) throws {
        try sha.update(out)
        try output.write(out)
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

    /// Ends the zstd frame, then commits the object (whole and durable).
    func finish() throws {
        try compressor.finish(sink: write)
        try output.commit()
    }

    /// Discards the member: nothing of it is left. Once the job thread has
    /// stopped (the one-thread-at-a-time rule above).
    func abort() {
        output.abort()
    }
}
