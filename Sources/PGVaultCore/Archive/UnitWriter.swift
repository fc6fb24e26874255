import Foundation
import PGClient

/// Writes one unit's member: the backup's workers and cold storage use it.
public enum UnitWriter {
    /// The size of a unit's buffers. Measured against 1 MiB on the default
    /// benchmark database: the same backup time, and about 5 MiB less peak
    /// RSS for a two-job backup (docs/benchmarks.md).
    static let bufferBytes = 1 << 19

    /// Runs `sql` (a `COPY ... TO STDOUT` in `format`) into the member
    /// `data/<id>.copy.zst` of `destination`: rows → row digest → 512 KiB
    /// buffer → zstd → the member's object writer, with the SHA-256 of what is
    /// written. The member appears once whole; a failure leaves nothing of it. The member holds the stream as the
    /// server sent it (for binary, its header and end marker too).
    ///
    /// From the second buffer on, zstd and the writes run on a thread of the
    /// unit's own (`JobThread`) while this one goes on reading: the server is
    /// not kept waiting while a buffer is compressed (a Unix socket holds only
    /// about 200 KiB). A unit under one buffer is compressed here, at its end.
    /// Memory: one row, two buffers and zstd's state. Cold storage uses it for
    /// its subset units too.
    static func memberName(_ id: String) -> String { "data/\(id).copy.zst" }

    public static func write(
        id: String, schema: String, table: String, columns: [String], sql: String, format: CopyFormat = .text, conn: PGConnection,
        into destination: ArchiveDestination, level: Int32, onFlush: (_ rows: Int64, _ rawBytes: Int64) -> Void = { _, _ in }
    ) throws -> Manifest.Unit {
        let member = memberName(id)
        let stream = try destination.member(member, level: level)
        var pipeline: JobThread<CompressedMember>?
        var finished = false
        defer {
            // The job thread stops first: the writer is used by one thread at a time.
            pipeline?.abort()
            if !finished { stream.abort() }
        }
        var digest = RowDigest()
        var reader = CopyRowReader(format)
        let capacity = bufferBytes
        var buffer = CompressedMember.emptyBuffer(capacity)
        var raw: Int64 = 0
        var rowsSinceFlush: Int64 = 0
        func flush(last: Bool) throws {
            try Cancellation.check()
            raw += Int64(buffer.count)
            onFlush(rowsSinceFlush, Int64(buffer.count))
            rowsSinceFlush = 0
            if pipeline == nil, !last {
                pipeline = try JobThread(name: "pgvault-zstd-\(id)", maxQueuedBytes: capacity + 64 * 1024) { stream }
            }
            if let pipeline {
                // The buffer goes over whole (this side lets go of it, so the
                // job thread can empty it in place); the queue takes one buffer
                // at a time, so once it has room the previous one is a spare:
                // two buffers in all.
                let bytes = buffer.count
                stream.hand(buffer)
                buffer = []
                try pipeline.enqueue(bytes: bytes) { try $0.compressNext() }
                buffer = stream.spare() ?? CompressedMember.emptyBuffer(capacity)
            } else {
                try buffer.withUnsafeBytes { try stream.compress($0) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try conn.copyOut(sql) { message in
            if let row = try reader.row(in: message) {
                digest.add(row: row)
                rowsSinceFlush += 1
            }
            buffer.append(contentsOf: message)
            if buffer.count >= capacity { try flush(last: false) }
        }
        try flush(last: true)
        var encoded: EncodedMember?
        if let pipeline {
            try pipeline.close { encoded = try $0.finish() }
        } else {
            encoded = try stream.finish()
        }
        guard let encoded else { throw PGVaultError.io("member \(member) was not finished") }
        finished = true
        return Manifest.Unit(
            id: id, schema: schema, table: table, member: member, columns: columns, fromPage: nil, toPage: nil,
            rows: digest.rows, rawBytes: raw, compressedBytes: encoded.bytes, sha256: encoded.sha256,
            rowDigest: digest.hex, copyFormat: format, chunks: encoded.chunks)
    }
}
