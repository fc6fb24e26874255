import CryptoDigest
import Foundation
import ZstdStream

/// A member being written: zstd into a file, with the SHA-256 of the
/// compressed bytes (data units and the schema scripts).
/// `UnitWriter.write` hands it to a `JobThread`; its
/// compressor and file are used by one thread at a time (the reader before and
/// after, the job thread in between, ordered by the job thread's lock), and
/// its buffers move between the two under its own lock, hence
/// `@unchecked Sendable`. Compressed buffers come back emptied, as spares for
/// the reader to fill again, so the reader does not allocate a new one each time.
final class CompressedMember: @unchecked Sendable {
    let file: OutputFile
    let sha: SHA2
    private let compressor: ZstdCompressor
    private let lock = NSLock()
    // Guarded by `lock`.
    private var pending: [[UInt8]] = []
    private var spares: [[UInt8]] = []

    init(path: String, level: Int32) throws {
        sha = try SHA2(.sha256)
        file = try OutputFile(creating: path)
        compressor = try ZstdCompressor(level: level, checksum: true)
    }

    static func emptyBuffer(_ capacity: Int) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(capacity + 64 * 1024)
        return buffer
    }

    func compress(_ bytes: UnsafeRawBufferPointer) throws {
        try compressor.compress(bytes, sink: write)
    }

    /// Compressed bytes: into the digest and the file.
    private func write(_ out: UnsafeRawBufferPointer) throws {
        try sha.update(out)
        try file.write(out)
    }

    /// Queues a full buffer for `compressNext()`.
    func hand(_ buffer: [UInt8]) {
        lock.withLock { pending.append(buffer) }
    }

    /// Compresses the oldest handed buffer, then keeps it as a spare.
    func compressNext() throws {
        guard var chunk = lock.withLock({ pending.isEmpty ? nil : pending.removeFirst() }) else { return }
        try chunk.withUnsafeBytes { try compress($0) }
        chunk.removeAll(keepingCapacity: true)
        lock.lock()
        if spares.count < 2 { spares.append(consume chunk) }
        lock.unlock()
    }

    /// An emptied buffer that has been compressed, if one is ready.
    func spare() -> [UInt8]? {
        lock.withLock { spares.popLast() }
    }

    /// Ends the zstd frame, then fsyncs and closes the file.
    func finish() throws {
        try compressor.finish(sink: write)
        try file.close()
    }
}
