import CryptoDigest
import Foundation

/// The repository secret: 32 random bytes made by `repo init`, and the keys
/// derived from it (docs/repository-format.md, "Keys").
///
/// The host that writes backups holds it in a key file; it makes chunk ids
/// (so it can deduplicate), reads and writes the index and the catalogs (so it
/// can list and prune), and authenticates what it writes (so a reader can
/// refuse an object planted by someone who knows only a recipient). It does
/// not decrypt table data: that takes an age identity.
public struct RepositoryKey: Sendable, Equatable {
    public static let length = 32

    /// The repository this key belongs to (config's `id`).
    public let repositoryID: String
    let secret: [UInt8]
    /// HMAC-SHA-256 key of chunk ids.
    let chunkIDKey: [UInt8]
    /// HMAC-SHA-256 key of the MAC lines of config and manifests.
    let macKey: [UInt8]
    /// ChaCha20-Poly1305 key of index objects and catalogs.
    let sealKey: [UInt8]

    init(repositoryID: String, secret: [UInt8]) throws {
        guard secret.count == Self.length else {
            throw PGVaultError.archive("the key of repository \(repositoryID) has \(secret.count) bytes, not \(Self.length); the key file is damaged")
        }
        self.repositoryID = repositoryID
        self.secret = secret
        func derive(_ purpose: String) throws -> [UInt8] {
            try HKDF.sha256(ikm: secret, salt: Array(repositoryID.utf8), info: Array("pgvault-repository-v2 \(purpose)".utf8))
        }
        chunkIDKey = try derive("chunk id")
        macKey = try derive("object mac")
        sealKey = try derive("seal")
    }

    /// A new random key for a new repository.
    static func generate(repositoryID: String) throws -> RepositoryKey {
        try RepositoryKey(repositoryID: repositoryID, secret: try SecureRandom.bytes(length))
    }

    /// The chunk id of `bytes`: HMAC-SHA-256 under the chunk-id key, so an id
    /// says nothing about the content to someone without the secret.
    func chunkID(of bytes: UnsafeRawBufferPointer) throws -> ChunkID {
        ChunkID(bytes: try HMACSHA256.authenticationCode(key: chunkIDKey, message: bytes))
    }

    /// What identifies the key to a person (`repo init`, errors): the first
    /// 16 hex digits of an HMAC of a fixed text, never the secret.
    public var fingerprint: String {
        let mac = (try? HMACSHA256.authenticationCode(key: macKey, message: Array("fingerprint".utf8))) ?? []
        return String(Hex.encode(mac).prefix(16))
    }

    // MARK: - The key file

    /// The key file's text: one JSON object, as `keys/secret.age` holds it too.
    func fileText() -> String {
        "{\"format\":\"pgvault-repository-key\",\"repository\":\"\(repositoryID)\",\"secret\":\"\(Hex.encode(secret))\"}\n"
    }

    /// Parses a key file's text; `source` names it in errors.
    static func parse(_ bytes: [UInt8], source: String) throws -> RepositoryKey {
        struct File: Decodable { var format: String; var repository: String; var secret: String }
        guard let file = try? JSONDecoder().decode(File.self, from: Data(bytes)), file.format == "pgvault-repository-key",
              let secret = Hex.decode(file.secret) else {
            throw PGVaultError.archive("\(source) is not a pgvault repository key file; give the key file `pgvault repo init` wrote (--key-file)")
        }
        return try RepositoryKey(repositoryID: file.repository, secret: secret)
    }

    /// Where the key of repository `id` is kept when no --key-file is given:
    /// `$PGVAULT_KEY_DIR/<id>.key`, or `~/.config/pgvault/keys/<id>.key`.
    public static func defaultPath(repositoryID id: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let dir = env["PGVAULT_KEY_DIR"] ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.config/pgvault/keys")
        return dir + "/\(id).key"
    }

    /// Reads the key file at `path`.
    static func read(path: String) throws -> RepositoryKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PGVaultError.archive("cannot read the repository key file '\(path)'; give the key file `pgvault repo init` wrote with --key-file, or read with --identity")
        }
        return try parse(Array(data), source: "'\(path)'")
    }

    /// Writes the key file owner-only (0600, its folder 0700), durably; refuses
    /// to overwrite one.
    func write(path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !Files.exists(folder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw PGVaultError.io("cannot create the folder of the key file '\(path)': \(Files.reason(error)); choose another --key-file")
            }
        }
        let store = LocalFolderStore(root: folder.isEmpty ? "." : folder)
        do {
            try store.put((path as NSString).lastPathComponent, bytes: Array(fileText().utf8), ifAbsent: true)
        } catch let error as PGVaultError where error.isExistingObject {
            throw PGVaultError.usage("the key file '\(path)' already exists; pgvault never overwrites a key (another repository's key would be lost): choose another --key-file")
        }
    }
}

/// A chunk's id: 32 bytes, written as 64 hex digits.
public struct ChunkID: Hashable, Sendable, Comparable, CustomStringConvertible {
    // Four words rather than an array: a dictionary of a million ids stays
    // one allocation per table slot, not one per id.
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    init(bytes: [UInt8]) {
        precondition(bytes.count == 32)
        func word(_ i: Int) -> UInt64 { bytes[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        a = word(0); b = word(8); c = word(16); d = word(24)
    }

    init?(hex: String) {
        guard hex.count == 64, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    var bytes: [UInt8] {
        [a, b, c, d].flatMap { w in (0..<8).reversed().map { UInt8(truncatingIfNeeded: w >> (UInt64($0) * 8)) } }
    }

    public var description: String { Hex.encode(bytes) }

    public static func < (l: ChunkID, r: ChunkID) -> Bool { (l.a, l.b, l.c, l.d) < (r.a, r.b, r.c, r.d) }
}

extension RepositoryKey {
    /// pg_dump 17.6 and later put `\restrict KEY` / `\unrestrict KEY` around a
    /// script, with a new random KEY each run, so the same schema never gave
    /// the same chunk twice. In a repository the key becomes an HMAC, under
    /// the repository key, of the script without those lines: the same schema
    /// gives the same script (and chunk), and the key stays unguessable to
    /// the server whose text the script holds, which is what it is for
    /// (psql runs the script in restricted mode until it meets the key).
    ///
    /// Two passes over the file, a line at a time (a PostgreSQL 18 statistics
    /// script is tens of MiB): the MAC, then the rewrite into a temporary file
    /// renamed over the script. The MAC is of "pg_dump restrict key\0" and the
    /// script's other lines joined with "\n".
    func pinRestrictKey(inFile path: String) throws {
        let mac = try HMACSHA256Stream(key: macKey)
        try Array("pg_dump restrict key\0".utf8).withUnsafeBytes { try mac.update($0) }
        var first = true, found = false
        try ScriptLines.each(path) { line in
            if ScriptLines.isRestrict(line) {
                found = true
                return
            }
            if !first { try [UInt8(ascii: "\n")].withUnsafeBytes { try mac.update($0) } }
            first = false
            try line.withUnsafeBytes { try mac.update($0) }
        }
        guard found else { return }
        let pinned = Hex.encode(try mac.finalize())
        let temporary = path + ".pinned"
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
              let out = FileHandle(forWritingAtPath: temporary) else {
            throw PGVaultError.io("cannot write pg_restore's script \(temporary)")
        }
        do {
            var buffer: [UInt8] = []
            var firstLine = true
            try ScriptLines.each(path) { line in
                if !firstLine { buffer.append(UInt8(ascii: "\n")) }
                firstLine = false
                if ScriptLines.isRestrict(line) {
                    let command = line.starts(with: Array("\\restrict ".utf8)) ? "\\restrict " : "\\unrestrict "
                    buffer.append(contentsOf: Array((command + pinned).utf8))
                } else {
                    buffer.append(contentsOf: line)
                }
                if buffer.count >= 1 << 20 {
                    try out.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try out.write(contentsOf: buffer)
            try out.close()
            try Files.publish(temporary, as: path)
        } catch {
            try? out.close()
            unlink(temporary)
            throw PGVaultError.io("cannot rewrite pg_restore's script \(path): \(error)")
        }
    }
}

/// A script file read a line at a time, in blocks: memory is one block and
/// the longest line.
enum ScriptLines {
    /// Calls `body` with every piece between newlines (the last one may be
    /// empty), as `split(separator: "\n", omittingEmptySubsequences: false)`.
    static func each(_ path: String, _ body: (ArraySlice<UInt8>) throws -> Void) throws {
        guard let input = FileHandle(forReadingAtPath: path) else {
            throw PGVaultError.io("cannot read pg_restore's script \(path)")
        }
        defer { try? input.close() }
        var line: [UInt8] = []
        while let block = try input.read(upToCount: 1 << 20), !block.isEmpty {
            var start = block.startIndex
            while let newline = block[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if line.isEmpty {
                    try body(ArraySlice(block[start..<newline]))
                } else {
                    line.append(contentsOf: block[start..<newline])
                    try body(line[...])
                    line.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            }
            line.append(contentsOf: block[start...])
        }
        try body(line[...])
    }

    /// `\restrict KEY` or `\unrestrict KEY`: ``SchemaScript/isRestrictLine``'s
    /// rule, asked only of lines that start with a backslash.
    static func isRestrict(_ line: ArraySlice<UInt8>) -> Bool {
        line.first == UInt8(ascii: "\\") && SchemaScript.isRestrictLine(Substring(String(decoding: line, as: UTF8.self)))
    }
}
