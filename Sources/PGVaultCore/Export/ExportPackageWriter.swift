import ArchiveIO
import CryptoDigest

/// Writes the files of an export package into a zip, recording each file's
/// size and SHA-256 for the manifest. Large files (a channel's messages) are
/// streamed: a JSON array is written element by element into a zip entry of
/// unknown size, through a small buffer, so memory does not grow with the data.
///
/// Not Sendable: one thread writes one package (libarchive's work, deflate,
/// CRC-32 and writes, runs on a thread of its own, see `JobThread`, while this
/// one reads rows and serializes JSON).
final class ExportPackageWriter {
    struct FileRecord: Sendable, Equatable {
        let path: String
        let bytes: Int64
        let sha256: String
    }

    private let archive: JobThread<ArchiveWriter>
    private let mtime: Int64
    private(set) var files: [FileRecord] = []
    /// Called after each file is complete (test hooks, cancellation checks).
    var afterFile: ((FileRecord) throws -> Void)?

    /// Deflate level of the zip's entries. Level 1 deflates several times
    /// faster than zlib's default (6), and the package grows by about a sixth:
    /// deflating was the largest part of an export's time.
    static let compressionLevel = 1

    init(path: String, mtime: Int64) throws {
        let options = "zip:compression-level=\(Self.compressionLevel)"
        archive = try JobThread(name: "pgvault-export-zip", maxQueuedBytes: 2 << 20) {
            try ArchiveWriter(path: path, format: .zip, options: options)
        }
        self.mtime = mtime
    }

    /// Stops the archive's thread, unless `close()` ran.
    deinit {
        archive.abort()
        buffer.release()
    }

    /// A whole file at once.
    func add(_ path: String, bytes: [UInt8]) throws {
        try archive.enqueue(bytes: bytes.count) { [mtime] in try $0.addData(path: path, bytes: bytes, mode: 0o600, mtime: mtime) }
        try record(FileRecord(path: path, bytes: Int64(bytes.count), sha256: try SHA2.hex(.sha256, of: bytes)))
    }

    func add(_ path: String, json: ExportJSON) throws {
        try add(path, bytes: json.serialized())
    }

    /// A JSON array written element by element; `body` appends the elements.
    /// Returns how many elements were written.
    @discardableResult
    func addArray(_ path: String, _ body: (inout ArrayStream) throws -> Void) throws -> Int {
        var stream = try beginArray(path)
        try body(&stream)
        try stream.finish()
        return stream.count
    }

    /// Starts a streamed JSON array; `ArrayStream.finish()` ends it. One at a time.
    func beginArray(_ path: String) throws -> ArrayStream {
        try beginEntry(path)
        return try ArrayStream(writer: self, path: path, object: nil)
    }

    /// Starts a JSON object whose last field, `key`, is a streamed array:
    /// `fields` come first, as `ExportJSON.object` writes them; the elements
    /// follow (at indent level 2); `ArrayStream.finish()` closes the array
    /// and the object. The file is the same text as `add(path, json:)` of
    /// the whole object would write. One at a time.
    func beginArray(_ path: String, after fields: [ExportJSON.Field], key: String) throws -> ArrayStream {
        try beginEntry(path)
        var object = JSONContainer.object(indent: 0)
        for field in fields { field.write(in: &object, into: &buffer) }
        object.key(escaping: key, &buffer)
        return try ArrayStream(writer: self, path: path, object: object)
    }

    private func beginEntry(_ path: String) throws {
        try archive.enqueue { [mtime] in try $0.beginEntry(path: path, size: nil, mode: 0o600, mtime: mtime) }
        buffer.removeAll()
    }

    /// Writes the zip's trailer, fsyncs and closes the file.
    func close() throws { try archive.close { try $0.close() } }

    private func record(_ file: FileRecord) throws {
        files.append(file)
        try afterFile?(file)
    }

    /// Elements are serialized into one buffer, which goes into the zip entry
    /// (and the file's digest) whenever it holds this much.
    private static let flushAt = 256 * 1024
    private var buffer = JSONBuffer(capacity: flushAt + 64 * 1024)

    private func flush(_ stream: inout ArrayStream) throws {
        guard buffer.count > 0 else { return }
        try stream.digest.update(buffer.bytes)
        let chunk = buffer.array
        try archive.enqueue(bytes: chunk.count) { try $0.write(chunk) }
        stream.bytes += Int64(buffer.count)
        buffer.removeAll()
    }

    /// The elements of one streamed JSON array (pretty-printed, elements at
    /// indent level 1, or 2 in an object), written through a buffer of
    /// `flushAt` bytes, so memory does not grow with the data.
    struct ArrayStream {
        fileprivate unowned let writer: ExportPackageWriter
        fileprivate let path: String
        fileprivate let digest: SHA2
        /// The object the array ends, if any (its fields are written).
        fileprivate let object: JSONContainer?
        fileprivate var array: JSONContainer
        fileprivate(set) var count = 0
        fileprivate(set) var bytes: Int64 = 0

        fileprivate init(writer: ExportPackageWriter, path: String, object: JSONContainer?) throws {
            self.writer = writer
            self.path = path
            self.object = object
            array = .array(indent: object == nil ? 0 : 1)
            digest = try SHA2(.sha256)
        }

        /// The indent level of the elements.
        var elementIndent: Int { array.indent + 1 }

        /// Appends one element, which `write` serializes (at `elementIndent`).
        mutating func append(writing write: (inout JSONBuffer) throws -> Void) throws {
            array.next(&writer.buffer)
            try write(&writer.buffer)
            count += 1
            if writer.buffer.count >= ExportPackageWriter.flushAt { try writer.flush(&self) }
        }

        mutating func append(_ element: ExportJSON) throws {
            let indent = elementIndent
            try append { element.write(into: &$0, indent: indent) }
        }

        /// Closes the array (and its object) and the zip entry, and records the file.
        mutating func finish() throws {
            array.end(&writer.buffer)
            object?.end(&writer.buffer)
            writer.buffer.append(UInt8(ascii: "\n"))
            try writer.flush(&self)
            try writer.archive.enqueue { try $0.endEntry() }
            try writer.record(FileRecord(path: path, bytes: bytes, sha256: try digest.hexDigest()))
        }
    }
}
