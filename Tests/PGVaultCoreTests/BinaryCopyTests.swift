import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// Binary COPY units: framing, the choice per table, restore and verify.
@Suite("binary COPY units")
struct BinaryCopyTests {
    /// A table with every kind of value the splitter must frame: NULLs, empty
    /// strings, bytes that look like framing (0x0A, 0xFF), long values, arrays, JSON.
    static func hostileTable(_ conn: PGConnection) throws {
        try conn.execute("""
            CREATE TABLE t (id bigint PRIMARY KEY, s text, b bytea, a bigint[], j jsonb, ts timestamptz, n numeric);
            INSERT INTO t SELECT g,
                CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'line\\nbreak\\t\\\\' ELSE repeat('x', g * 37) END,
                CASE WHEN g % 3 = 0 THEN NULL ELSE decode(repeat('0aff0d', g % 50), 'hex') END,
                ARRAY[g, -g, 10], jsonb_build_object('k', g, 'v', repeat('y', g % 7)),
                '2024-01-01'::timestamptz + g * interval '1 minute 1.5 second', g / 7.0
            FROM generate_series(1, 300) g;
            CREATE TABLE empty_t (id int);
            """)
    }

    /// The server's messages for `sql`, and the rows a ``CopyRowReader`` takes from them.
    static func messages(_ conn: PGConnection, _ sql: String) throws -> (stream: [UInt8], rows: [[UInt8]]) {
        var stream: [UInt8] = [], rows: [[UInt8]] = []
        var reader = CopyRowReader(.binary)
        try conn.copyOut(sql) { message in
            stream += message
            if let row = try reader.row(in: message) { rows.append(Array(row)) }
        }
        return (stream, rows)
    }

    static func split(_ stream: [UInt8], chunks: [Int]) throws -> (rows: [[UInt8]], incomplete: String?) {
        var splitter = RowSplitter(.binary)
        var rows: [[UInt8]] = [], at = 0, i = 0
        while at < stream.count {
            let n = min(chunks[i % chunks.count], stream.count - at)
            try stream[at..<(at + n)].withUnsafeBytes { try splitter.feed($0) { rows.append(Array($0)) } }
            at += n
            i += 1
        }
        return (rows, splitter.incomplete)
    }

    @Test("a binary stream splits into the server's rows under any chunking; truncation and trailing bytes are caught")
    func framing() throws {
        let conn = try TestServers.database(prefix: "bin").connect()
        try Self.hostileTable(conn)
        let (stream, rows) = try Self.messages(conn, "COPY t TO STDOUT (FORMAT binary)")
        #expect(rows.count == 300)
        for chunks in [[1], [2], [3], [7], [19], [20], [64], [1000], [1 << 20], [1, 5, 300, 2, 17, 4096]] {
            let got = try Self.split(stream, chunks: chunks)
            #expect(got.rows == rows && got.incomplete == nil, "chunks \(chunks)")
        }
        // Every truncation is reported: a partial tuple or header, or no end marker.
        for cut in stride(from: 0, to: stream.count - 1, by: 97) + [stream.count - 1, stream.count - 2] {
            let got = try Self.split(Array(stream[0..<cut]), chunks: [4096])
            #expect(got.incomplete != nil, "cut at \(cut)")
        }
        #expect(throws: PGVaultError.self) { try Self.split(stream + [0], chunks: [4096]) }
        #expect(throws: PGVaultError.self) { try Self.split(Array("1\tx\n".utf8), chunks: [4096]) }
        // An empty table is a header and an end marker, in one message.
        let (empty, none) = try Self.messages(conn, "COPY empty_t TO STDOUT (FORMAT binary)")
        #expect(none.isEmpty && empty.count == 21)
        let got = try Self.split(empty, chunks: [1])
        #expect(got.rows.isEmpty && got.incomplete == nil)
        // The same digest the backup computes from the messages.
        #expect(try RowDigest.of(conn, "COPY t TO STDOUT (FORMAT binary)", format: .binary).rows == 300)
    }

    @Test("binary where every column allows it, text otherwise; restore and verify agree; --copy-format text stays text")
    func choiceAndRoundTrip() async throws {
        let db = try TestServers.database(prefix: "binsrc")
        let conn = try db.connect()
        try Self.hostileTable(conn)
        try conn.execute("""
            CREATE TYPE mood AS ENUM ('calm', 'busy');
            CREATE TYPE pair AS (a int, b text);
            CREATE DOMAIN positive AS bigint CHECK (VALUE > 0);
            CREATE TABLE with_enum (id int PRIMARY KEY, m mood, p positive);
            CREATE TABLE with_enum_array (id int PRIMARY KEY, ms mood[]);
            CREATE TABLE with_composite (id int PRIMARY KEY, p pair);
            CREATE TABLE with_regclass (id int PRIMARY KEY, r regclass);
            INSERT INTO with_enum VALUES (1, 'calm', 5), (2, NULL, 7);
            INSERT INTO with_enum_array VALUES (1, '{calm,busy}');
            INSERT INTO with_composite VALUES (1, ROW(1, 'x'));
            INSERT INTO with_regclass VALUES (1, 't');
            """)
        let out = try TestScratch.directory("binary") + "/archive"
        let summary = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: out))
        let manifest = try #require(summary.manifest)
        func format(_ table: String) -> CopyFormat? { manifest.units.first { $0.table == table }?.format }
        #expect(format("t") == .binary && format("with_enum") == .binary)
        #expect(format("with_enum_array") == .text && format("with_composite") == .text && format("with_regclass") == .text)
        #expect(manifest.copyFormat == "mixed" && manifest.formatVersion == 2)
        #expect(try await Verifier.checkArchive(path: out, jobs: 2, progress: nil).ok)

        let target = try db.sibling(prefix: "bindst")
        let restored = try await RestoreEngine.run(RestoreOptions(archive: out, conninfo: target.conninfo))
        #expect(restored.verifyOK == true, "\(restored.verifyFailures)")
        try RestoreFixtures.expectSameTables(conn, try target.connect(), minimum: 5)

        // Damage one row: the failure names it by its key, decoded from binary.
        try target.connect().execute("UPDATE t SET s = 'changed' WHERE id = 42")
        let report = try await Verifier.checkRestored(
            archive: .path(out), conninfo: target.conninfo, jobs: 2, units: nil, extraRelations: [], progress: nil)
        let failure = try #require(report.failures.first { $0.object == "public.t" })
        #expect(failure.samples.contains("id=42 (changed)"), "\(failure.samples)")

        var text = BackupOptions(conninfo: db.conninfo, output: out + "-text")
        text.binaryCopy = false
        let textManifest = try #require(try await BackupEngine.run(text).manifest)
        #expect(textManifest.units.allSatisfy { $0.format == .text } && textManifest.copyFormat == "text")
        // The same rows, so the same counts; the digests differ by format.
        #expect(textManifest.units.map(\.rows).reduce(0, +) == manifest.units.map(\.rows).reduce(0, +))
    }

    @Test("a format-1 archive (all text, no unit formats) still verifies and restores")
    func formatOne() async throws {
        let db = try TestServers.database(prefix: "binv1")
        let conn = try db.connect()
        try Self.hostileTable(conn)
        let out = try TestScratch.directory("binary-v1") + "/archive"
        var options = BackupOptions(conninfo: db.conninfo, output: out)
        options.binaryCopy = false
        _ = try await BackupEngine.run(options)
        // Rewrite the manifest the way pgvault's format 1 wrote it.
        let path = out + "/" + Manifest.memberName
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        json["formatVersion"] = 1
        json["copyFormat"] = "text"
        json["units"] = (json["units"] as? [[String: Any]] ?? []).map { unit in unit.filter { $0.key != "copyFormat" } }
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        let manifest = try Archive.manifest(of: try Archive.open(out))
        #expect(manifest.formatVersion == 1 && manifest.units.allSatisfy { $0.copyFormat == nil && $0.format == .text })
        #expect(try await Verifier.checkArchive(path: out, jobs: 2, progress: nil).ok)
        let target = try db.sibling(prefix: "binv1dst")
        let restored = try await RestoreEngine.run(RestoreOptions(archive: out, conninfo: target.conninfo))
        #expect(restored.verifyOK == true, "\(restored.verifyFailures)")
        try RestoreFixtures.expectSameTables(conn, try target.connect(), minimum: 2)
    }

    @Test("binary units into a database of another encoding are refused before anything changes")
    func encodingRefused() async throws {
        let db = try TestServers.database(prefix: "binenc")
        let conn = try db.connect()
        try Self.hostileTable(conn)
        let out = try TestScratch.directory("binary-encoding") + "/archive"
        _ = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: out))
        let name = "latin_\(UUID().uuidString.prefix(8).lowercased())"
        try conn.execute("CREATE DATABASE \(SQL.ident(name)) TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
        let target = db.server.conninfo(database: name)
        do {
            _ = try await RestoreEngine.run(RestoreOptions(archive: out, conninfo: target))
            Issue.record("a LATIN1 target took UTF8 binary units")
        } catch {
            #expect("\(error)".contains("encoding LATIN1") && "\(error)".contains("--copy-format text"), "\(error)")
        }
        #expect(try PGConnection(conninfo: target).query("SELECT count(*) FROM pg_class WHERE relname = 't'").scalar == "0")
    }
}
