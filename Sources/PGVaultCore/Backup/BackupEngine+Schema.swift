import Foundation
import PGClient

extension BackupEngine {
    // MARK: - Schema

    static func dumpSchema(
        _ options: BackupOptions, serverMajor: Int, serverVersion: String, snapshot: String, selected: [Catalog.Relation],
        relations: [Catalog.Relation], staging: String, destination: ArchiveDestination
    ) async throws -> Manifest.Schema? {
        if options.dataOnly { return nil }
        // A full backup dumps the whole schema (functions, views, types...); a
        // selective one names its tables.
        let whole = selected.count == relations.filter({ !$0.table.schema.hasPrefix("pgvault") }).count
        var tableArgs: [String] = []
        if !whole {
            for r in selected {
                tableArgs += ["--table", "\"\(r.table.schema.replacingOccurrences(of: "\"", with: "\"\""))\".\"\(r.table.name.replacingOccurrences(of: "\"", with: "\"\""))\""]
            }
        }
        let conninfo = options.conninfo
        let selectionArgs = tableArgs
        let pgBin = options.pgBin
        return try await Blocking.run("pgvault-pg_dump") {
            let tools = try PGTools.locate(serverMajor: serverMajor, serverVersion: serverVersion, pgBin: pgBin)
            // One pg_dump reads the catalog once into a custom-format file;
            // pg_restore writes each section's script from that file, with no
            // database (the same text `pg_dump --section` prints, without a
            // second read of the catalog).
            let dump = staging + "/schema/schema.dump"
            defer { unlink(dump) }
            let args = ["--schema-only", "--format=custom", "--compress=0", "--file=\(dump)", "--snapshot=\(snapshot)", "--no-password"]
                + selectionArgs
            let result = try tools.run("pg_dump", conninfo: conninfo, arguments: args)
            guard result.status == 0 else {
                throw PGVaultError(.server, "pg_dump \(tools.versionString) (\(tools.binDir)) failed to dump the schema: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            var members: [Manifest.Member] = []
            for section in ["pre-data", "post-data"] {
                let plain = staging + "/schema/\(section).sql"
                defer { unlink(plain) }
                let result = try tools.run("pg_restore", conninfo: nil, arguments: ["--section=\(section)", "--file=\(plain)", dump])
                guard result.status == 0 else {
                    throw PGVaultError.io("pg_restore \(tools.versionString) (\(tools.binDir)) failed to write the \(section) schema: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
                if let chunks = destination.chunks { try chunks.repository.key.pinRestrictKey(inFile: plain) }
                members.append(try compressFile(plain, member: "schema/\(section).sql.zst", into: destination))
            }
            return Manifest.Schema(pgDumpVersion: tools.versionString, preData: members[0], postData: members[1])
        }
    }

    /// Writes the local file `path` (pg_restore's script) as the compressed member `member`.
    static func compressFile(_ path: String, member: String, into destination: ArchiveDestination) throws -> Manifest.Member {
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? input.close() }
        // Schema text is small; a modest level keeps zstd's memory (and so peak RSS) low.
        let out = try destination.member(member, level: 6)
        let encoded: EncodedMember
        do {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                try Cancellation.check()
                try chunk.withUnsafeBytes { try out.compress($0) }
            }
            encoded = try out.finish()
        } catch {
            out.abort()
            throw error
        }
        return Manifest.Member(member: member, bytes: encoded.bytes, sha256: encoded.sha256, chunks: encoded.chunks)
    }
}
