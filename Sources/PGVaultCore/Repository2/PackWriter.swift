import AgeFormat
import CryptoDigest
import Foundation

/// One pack being written: chunks' zstd frames, one after another, into the
/// object `packs/<id[0..<2]>/<id>` — through an age encryptor to the
/// repository's recipients when it is encrypted. The object appears whole at
/// ``finish()`` (an upload, or a temporary file renamed); a pack that is
/// aborted, or whose writer dies, leaves nothing, and its chunks were never
/// indexed. Used by one thread at a time (``ChunkWriteSession`` checks packs
/// out and in: its lock orders the hand-overs, which the compiler cannot
/// see, hence `@unchecked Sendable`).
final class PackWriter: @unchecked Sendable {
    let id: String
    private let output: any ObjectWriter
    private let encryptor: AgeEncryptor?
    /// Plaintext bytes appended: where the next chunk starts.
    private(set) var plaintextBytes: Int64 = 0
    /// The chunks in it, for its index object.
    private(set) var entries: [ChunkIndex.Entry] = []

    init(store: any ObjectStore, recipients: [AgeRecipient]?) throws {
        id = Hex.encode(try SecureRandom.bytes(16))
        output = try store.writer(for: Manifest.PackRef(id: id, size: 0, headerBytes: 0).objectKey, ifAbsent: true)
        if let recipients {
            do { encryptor = try AgeEncryptor(recipients: recipients) } catch {
                output.abort()
                throw PGVaultError.archive("cannot start an encrypted pack: \(error)")
            }
        } else {
            encryptor = nil
        }
    }

    /// Appends one chunk: `write` hands its frame's bytes on in pieces as
    /// zstd makes them (straight through the encryptor into the object, so
    /// no whole frame is held); returns where the chunk lies.
    func append(_ id: ChunkID, rawLength: Int, frame: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> ChunkIndex.Entry {
        let start = plaintextBytes
        try frame { piece in
            if let encryptor {
                let sealed: [UInt8]
                do { sealed = try encryptor.update(piece) } catch { throw PGVaultError.archive("cannot encrypt pack \(self.id): \(error)") }
                try sealed.withUnsafeBytes { try output.write($0) }
            } else {
                try output.write(piece)
            }
            plaintextBytes += Int64(piece.count)
        }
        let entry = ChunkIndex.Entry(id: id, pack: self.id, offset: start, length: Int(plaintextBytes - start), rawLength: rawLength)
        entries.append(entry)
        return entry
    }

    /// Ends the age stream and commits the object; returns the pack's record.
    func finish() throws -> Manifest.PackRef {
        var headerBytes = 0
        if let encryptor {
            let last: [UInt8]
            do { last = try encryptor.finish() } catch { throw PGVaultError.archive("cannot encrypt pack \(id): \(error)") }
            try last.withUnsafeBytes { try output.write($0) }
            headerBytes = encryptor.payloadOffset
        }
        let size = try output.commit()
        return Manifest.PackRef(id: id, size: size, headerBytes: headerBytes)
    }

    func abort() { output.abort() }
}
