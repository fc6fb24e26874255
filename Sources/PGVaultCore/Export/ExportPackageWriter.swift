import ArchiveIO

/// Writes the files of an export package into a zip, recording each file's
/// size and SHA-256 for the manifest. Large files (a channel's messages) are
/// streamed: a JSON array is written element by element into a zip entry of
/// unknown size, through a small buffer, so memory does not grow with the data.
///
/// Not Sendable: one thread writes one package.
final class ExportPackageWriter {
    struct FileRecord: Sendable, Equatable {
        let path: String
        let bytes: Int64
        let sha256: String
    }

    private let archive: ArchiveWriter
    private let mtime: Int64
    private(set) var files: [FileRecord] = []
    /// Called after each file is complete (test hooks, cancellation checks).
    var afterFile: ((FileRecord) throws -> Void)?

    init(path: String, mtime: Int64) throws {
        archive = try ArchiveWriter(path: path, format: .zip)
        self.mtime = mtime
    }

    /// A whole file at once.
    func add(_ path: String, bytes: [UInt8]) throws {
        try archive.addData(path: path, bytes: bytes, mode: 0o600, mtime: mtime)
        try record(FileRecord(path: path, bytes: Int64(bytes.count), sha256: SHA2.hex(.sha256, of: bytes)))
    }

    func add(_ path: String, json: ExportJSON) throws {
        try add(path, bytes: json.serialized())
    }

    /// A JSON array written element by element; `body` appends the elements.
    /// Returns how many elements were written.
    @discardableResult
    func addArray(_ path: String, _ body: (inout ArrayStream) throws -> Void) throws -> Int {
        try archive.beginEntry(path: path, size: nil, mode: 0o600, mtime: mtime)
        var stream = ArrayStream(archive: archive)
        try body(&stream)
        try stream.finish()
        try archive.endEntry()
        try record(FileRecord(path: path, bytes: stream.bytes, sha256: stream.digest.hexDigest()))
        return stream.count
    }

    /// Writes the zip's trailer, fsyncs and closes the file.
    func close() throws { try archive.close() }

    private func record(_ file: FileRecord) throws {
        files.append(file)
        try afterFile?(file)
    }

    /// The elements of one streamed JSON array.
    struct ArrayStream {
        fileprivate let archive: ArchiveWriter
        fileprivate let digest = SHA2(.sha256)
        fileprivate var buffer: [UInt8] = []
        fileprivate(set) var count = 0
        fileprivate(set) var bytes: Int64 = 0
        private static let flushAt = 256 * 1024

        fileprivate init(archive: ArchiveWriter) {
            self.archive = archive
            buffer.reserveCapacity(Self.flushAt + 64 * 1024)
            buffer.append(UInt8(ascii: "["))
        }

        mutating func append(_ element: ExportJSON) throws {
            if count > 0 { buffer.append(UInt8(ascii: ",")) }
            ExportJSON.newline(&buffer, 1)
            element.write(into: &buffer, indent: 1)
            count += 1
            if buffer.count >= Self.flushAt { try flush() }
        }

        fileprivate mutating func finish() throws {
            if count > 0 { ExportJSON.newline(&buffer, 0) }
            buffer.append(contentsOf: "]\n".utf8)
            try flush()
        }

        private mutating func flush() throws {
            guard !buffer.isEmpty else { return }
            try buffer.withUnsafeBytes { raw in
                digest.update(raw)
                try archive.write(raw)
            }
            bytes += Int64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }
    }
}
