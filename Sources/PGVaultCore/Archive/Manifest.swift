import Foundation

/// manifest.json: what an archive holds, from which snapshot, and how to check
/// every byte of it. docs/archive-format.md documents each field.
public struct Manifest: Codable, Sendable, Equatable {
    public static let formatName = "pgvault-archive"
    /// Bumped on any change a reader of the previous version could misread.
    /// 2: units may hold binary COPY (`Unit.copyFormat`); version 1 is all text.
    public static let currentFormatVersion = 2
    public static let memberName = "manifest.json"

    public var format: String = Manifest.formatName
    public var formatVersion: Int = Manifest.currentFormatVersion
    public var toolVersion: String = PGVault.version
    public var startedAt: String
    public var completedAt: String
    public var server: Server
    public var database: Database
    public var snapshot: Snapshot
    /// Versions recorded in `_sqlx_migrations`, when that table exists.
    public var migrations: [Int64]?
    /// The units' COPY formats: `text`, `binary`, or `mixed` (each unit says
    /// its own; see docs/archive-format.md).
    public var copyFormat: String = "text"
    /// Session settings under which the COPY text was produced; a restore and a
    /// verification use the same ones so values read back byte-identical.
    public var copySettings: [String: String]
    public var compression: Compression
    /// What the backup was asked to hold.
    public var selection: Selection
    public var schema: Schema?
    public var sequences: [SequenceValue]
    public var tables: [Table]
    public var units: [Unit]
    /// A backup in a format-2 repository: the packs its chunks lie in
    /// (``ChunkRef/pack`` indexes this list). Absent in an archive.
    public var packs: [PackRef]?

    public struct Server: Codable, Sendable, Equatable {
        public var version: String
        public var versionNumber: Int
        public var systemIdentifier: String
        public var timeline: Int?
        public var walSegmentSize: Int?
    }

    public struct Database: Codable, Sendable, Equatable {
        public var name: String
        public var encoding: String
        public var collate: String?
        public var ctype: String?
    }

    public struct Snapshot: Codable, Sendable, Equatable {
        /// The id pg_export_snapshot() gave; meaningful only while the backup ran.
        public var id: String
        /// Server time at which the snapshot was taken (ISO-8601 UTC).
        public var time: String
        /// pg_current_wal_lsn() at the snapshot, for information: where the
        /// server's WAL stood. No WAL can be replayed onto a logical archive;
        /// point-in-time recovery starts from a pg_basebackup.
        public var walLSN: String
        /// The WAL segment file holding `walLSN`.
        public var walSegment: String?
        /// Set when the backup was taken on a hot standby: the data is the
        /// primary's as of the WAL the standby had replayed (`walLSN` is then
        /// `pg_last_wal_replay_lsn()`). Absent from a primary's backup.
        public var standby: Standby? = nil
    }

    /// Where a standby stood when a backup read it.
    public struct Standby: Codable, Sendable, Equatable {
        /// pg_last_wal_replay_lsn() at the snapshot.
        public var replayLSN: String
        /// pg_last_wal_receive_lsn(): WAL received but maybe not yet replayed.
        public var receiveLSN: String?
        /// pg_last_xact_replay_timestamp(): the primary's commit time of the
        /// last transaction replayed, so the data's age (ISO-8601 UTC).
        public var lastReplayedCommit: String?
    }

    public struct Compression: Codable, Sendable, Equatable {
        public var algorithm: String = "zstd"
        public var level: Int
        public var checksums: Bool = true
    }

    public struct Selection: Codable, Sendable, Equatable {
        public var tables: [String]
        public var excludeTables: [String]
        public var schemaOnly: Bool
        public var dataOnly: Bool
    }

    public struct Schema: Codable, Sendable, Equatable {
        /// pg_dump's version (it must be at least the server's).
        public var pgDumpVersion: String
        public var preData: Member
        public var postData: Member
        /// PostgreSQL 18 and later: the tables' and indexes' optimizer
        /// statistics (pg_dump 18's `pg_restore_relation_stats` and
        /// `pg_restore_attribute_stats` calls), applied after post-data so
        /// that the restored database plans well before its first ANALYZE.
        public var statistics: Member? = nil

        /// Every schema member, in the order a restore uses them.
        public var members: [Member] { [preData, postData] + (statistics.map { [$0] } ?? []) }

        /// The schema members with `transform` applied to each.
        public func mapMembers(_ transform: (Member) throws -> Member) rethrows -> Schema {
            var out = self
            out.preData = try transform(preData)
            out.postData = try transform(postData)
            out.statistics = try statistics.map(transform)
            return out
        }
    }

    /// A file of the archive other than data units: name, size and SHA-256.
    public struct Member: Codable, Sendable, Equatable {
        public var member: String
        public var bytes: Int64
        public var sha256: String
        /// In a repository: the member's chunks (then `sha256` is of its raw bytes).
        public var chunks: [ChunkRef]? = nil
    }

    /// A pack of a format-2 repository (docs/repository-format.md): its
    /// object `packs/<id[0..<2]>/<id>`, the object's size, and how many bytes
    /// precede its payload (the age header and nonce; 0 unencrypted).
    public struct PackRef: Codable, Sendable, Equatable {
        public var id: String
        public var size: Int64
        public var headerBytes: Int

        public var objectKey: String { "packs/\(id.prefix(2))/\(id)" }
    }

    /// One chunk of a member in a format-2 repository: the zstd frame at
    /// `offset` of the pack's plaintext, `length` bytes long, which
    /// decompresses to `rawLength` bytes whose HMAC-SHA-256 under the
    /// chunk-id key is `id`.
    public struct ChunkRef: Codable, Sendable, Equatable {
        public var id: String
        public var pack: Int
        public var offset: Int64
        public var length: Int
        public var rawLength: Int
    }

    public struct SequenceValue: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var lastValue: String
        public var isCalled: Bool
        /// The table and column owning the sequence (serial/identity), if any.
        public var ownedBy: String?
    }

    public struct Column: Codable, Sendable, Hashable {
        public var name: String
        /// format_type(): e.g. `bigint`, `character varying(32)`, `timestamp with time zone`.
        public var type: String
        public var notNull: Bool
        /// Generated (STORED) columns are not in the COPY data; the target computes them.
        public var generated: Bool
    }

    public struct Partitioning: Codable, Sendable, Equatable {
        /// `range`, `list` or `hash`.
        public var strategy: String
        /// pg_get_partkeydef(): e.g. `RANGE (created_at)`.
        public var keyDefinition: String
        public var keyColumns: [String]
    }

    /// A range, list or hash bound, in the server's own words and parsed.
    public struct Bound: Codable, Sendable, Equatable {
        /// pg_get_expr(relpartbound): e.g. `FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00')`.
        public var expression: String
        public var isDefault: Bool
        /// For range bounds: the lower and upper values as text (MINVALUE/MAXVALUE kept as words).
        public var rangeFrom: [String]?
        public var rangeTo: [String]?
    }

    public struct Table: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        /// `table`, `partitioned` (a parent: holds no rows itself) or `partition`.
        public var kind: String
        public var columns: [Column]
        public var partitioning: Partitioning?
        /// For a partition: its parent's schema-qualified name.
        public var parentSchema: String?
        public var parentName: String?
        public var bound: Bound?
        /// Columns of the primary key (or of a unique, all-NOT-NULL key), used by
        /// verification to name offending rows.
        public var keyColumns: [String]?
        /// Sum of the rows of this table's units.
        public var rows: Int64

        public var qualifiedName: String { "\(schema).\(name)" }
    }

    /// One COPY stream: a whole table or partition, or one ctid range of it.
    public struct Unit: Codable, Sendable, Equatable {
        public var id: String
        public var schema: String
        public var table: String
        public var member: String
        /// COPY column list, in order.
        public var columns: [String]
        /// For a split table: the heap pages [fromPage, toPage) this unit read;
        /// toPage nil means "to the end".
        public var fromPage: Int64?
        public var toPage: Int64?
        public var rows: Int64
        /// Bytes of the COPY stream before compression.
        public var rawBytes: Int64
        /// Bytes of the member (compressed).
        public var compressedBytes: Int64
        /// SHA-256 of the member's bytes.
        public var sha256: String
        /// Order-independent digest of the rows (see ``RowDigest``).
        public var rowDigest: String
        /// How the rows are encoded; absent (format version 1) means text.
        public var copyFormat: CopyFormat?
        /// In a repository: the COPY stream's chunks, in order; then
        /// `compressedBytes` is the sum of their stored sizes and `sha256` is
        /// of the raw COPY stream.
        public var chunks: [ChunkRef]? = nil
        /// In a repository: what says the unit's rows are the same in a later
        /// backup without reading them (see ``UnchangedUnits``); nil when the
        /// server does not let pgvault tell.
        public var fingerprint: String? = nil

        public var format: CopyFormat { copyFormat ?? .text }

        public var qualifiedTable: String { "\(schema).\(table)" }
    }

    public func table(schema: String, name: String) -> Table? {
        tables.first { $0.schema == schema && $0.name == name }
    }

    public func units(of table: Table) -> [Unit] {
        units.filter { $0.schema == table.schema && $0.table == table.name }
    }

    /// ``table(schema:name:)`` and ``units(of:)`` from hash tables built once:
    /// for a loop over every table or unit (10,000 partitions would
    /// otherwise cost 10,000 scans of 10,000).
    public struct Lookup: Sendable {
        private struct Key: Hashable { var schema, name: String }
        private let tables: [Key: Table]
        private let units: [Key: [Unit]]

        init(_ manifest: Manifest) {
            tables = Dictionary(manifest.tables.map { (Key(schema: $0.schema, name: $0.name), $0) }, uniquingKeysWith: { a, _ in a })
            units = Dictionary(grouping: manifest.units, by: { Key(schema: $0.schema, name: $0.table) })
        }

        public func table(schema: String, name: String) -> Table? { tables[Key(schema: schema, name: name)] }
        public func units(of table: Table) -> [Unit] { units[Key(schema: table.schema, name: table.name)] ?? [] }
    }

    public var lookup: Lookup { Lookup(self) }

    /// The manifest-level summary of the units' formats.
    public static func copyFormatSummary(_ units: [Unit]) -> String {
        let formats = Set(units.map(\.format))
        return formats.count > 1 ? "mixed" : (formats.first ?? .text).rawValue
    }

    // MARK: - Encoding

    /// The manifest as manifest.json holds it: pretty-printed JSON with
    /// sorted keys and a final newline.
    public func encoded() throws -> [UInt8] {
        var out: [UInt8] = []
        try encode { out.append(contentsOf: $0) }
        return out
    }

    /// How many bytes ``encoded()`` gives, without holding them.
    public func encodedCount() throws -> Int {
        var count = 0
        try encode { count += $0.count }
        return count
    }

    /// Writes ``encoded()``'s bytes to `write`, in pieces of about 1 MiB.
    ///
    /// Foundation's `JSONEncoder` builds a tree of the whole document before
    /// it writes a byte: at 10,000 partitions (37 MB of JSON) that took the
    /// backup from 117 to 211 MB. So the tables and units, nearly all of
    /// the document, are encoded one at a time into the encoding of the
    /// rest, at the places where that has them as empty arrays. Each is
    /// encoded by the same encoder and indented to its depth, so the bytes
    /// are those of encoding the manifest whole (``LazyJSONDecoderTests``
    /// and ManifestEncodingTests check that they are).
    public func encode(into write: (UnsafeRawBufferPointer) throws -> Void) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var rest = self
        rest.tables = []
        rest.units = []
        let skeleton = Array(try encoder.encode(rest)) + [0x0A]
        // An empty array at the top level, as the encoder writes it.
        func emptyArray(_ key: String) -> [UInt8] { Array("\n  \"\(key)\" : [\n\n  ]".utf8) }
        var splices: [(at: Int, marker: Int, elements: (inout [UInt8]) throws -> Bool)] = []
        func splice<Element: Encodable>(_ key: String, _ elements: [Element]) {
            let marker = emptyArray(key)
            guard !elements.isEmpty, let at = skeleton.firstRange(of: marker)?.lowerBound else { return }
            var next = 0
            splices.append((at, marker.count, { out in
                guard next < elements.count else { return false }
                Self.appendIndented(try encoder.encode(elements[next]), into: &out, first: next == 0)
                next += 1
                return true
            }))
        }
        splice("tables", tables)
        splice("units", units)
        splices.sort { $0.at < $1.at }

        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        func flush(ifOver limit: Int) throws {
            guard out.count >= limit else { return }
            try out.withUnsafeBytes { try write($0) }
            out.removeAll(keepingCapacity: true)
        }
        var from = 0
        for splice in splices {
            // `\n  "tables" : [` of the marker, then the elements, then `\n  ]`.
            let opening = splice.at + splice.marker - 5
            out.append(contentsOf: skeleton[from..<opening])
            while try splice.elements(&out) { try flush(ifOver: 1 << 20) }
            out.append(contentsOf: Array("\n  ]".utf8))
            from = splice.at + splice.marker
        }
        out.append(contentsOf: skeleton[from...])
        try flush(ifOver: 1)
    }

    /// An element of a top-level array: after `,` unless it is the first,
    /// on a line of its own, every line indented four spaces more (the
    /// encoder leaves the blank line of an empty array unindented).
    private static func appendIndented(_ json: Data, into out: inout [UInt8], first: Bool) {
        out.append(contentsOf: Array((first ? "\n    " : ",\n    ").utf8))
        json.withUnsafeBytes { bytes in
            var previousNewline = false
            for byte in bytes {
                if previousNewline, byte != 0x0A { out.append(contentsOf: [0x20, 0x20, 0x20, 0x20]) }
                out.append(byte)
                previousNewline = byte == 0x0A
            }
        }
    }

    /// Parses a manifest and refuses one this version cannot read. The
    /// document is read as it streams (``ManifestReader``: at 10,000
    /// partitions it is tens of MB); its header is read on its own only to
    /// say why a manifest does not decode.
    public static func decode(_ bytes: some ContiguousBytes, source: String) throws -> Manifest {
        var reader = ManifestReader()
        try bytes.withUnsafeBytes { try reader.feed($0, source: source) }
        return try decode(reader, source: source)
    }

    /// The manifest of a reader fed the whole document.
    static func decode(_ reader: consuming ManifestReader, source: String) throws -> Manifest {
        struct Header: Decodable { var format: String?; var formatVersion: Int? }
        var manifest: Manifest?
        var failure: Error?
        do { manifest = try reader.finish() } catch { failure = error }
        let header: Header
        if let manifest {
            header = Header(format: manifest.format, formatVersion: manifest.formatVersion)
        } else if let syntax = failure as? JSONSyntaxError {
            throw PGVaultError.archive("\(source): manifest.json is not valid JSON (\(syntax)), so the archive is damaged; use another backup")
        } else {
            do {
                header = try reader.header(Header.self)
            } catch {
                throw PGVaultError.archive("\(source): manifest.json is not valid JSON (\(error)), so the archive is damaged; use another backup")
            }
        }
        guard header.format == formatName else {
            throw PGVaultError.archive("\(source): manifest.json is not a pgvault manifest (format is \(header.format.map { "'\($0)'" } ?? "missing"))")
        }
        guard let version = header.formatVersion, version >= 1 else {
            throw PGVaultError.archive("\(source): manifest.json has no valid formatVersion")
        }
        guard version <= currentFormatVersion else {
            throw PGVaultError.archive("\(source): archive format version \(version) is newer than this pgvault (\(PGVault.version)) reads (up to \(currentFormatVersion)); upgrade pgvault")
        }
        guard let manifest else {
            throw PGVaultError.archive("\(source): manifest.json does not match format version \(version): \(failure.map(Self.describe) ?? "unknown error")")
        }
        return manifest
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing field '\(Self.path(ctx.codingPath + [key]))'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at '\(Self.path(ctx.codingPath))'"
        case DecodingError.dataCorrupted(let ctx):
            return "bad value at '\(Self.path(ctx.codingPath))'"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
