import Foundation
import PGClient

extension BackupEngine {
    // MARK: - Schema

    static func dumpSchema(
        _ options: BackupOptions, serverMajor: Int, serverVersion: String, snapshot: String, tables selected: [Catalog.Relation]?,
        staging: String, destination: ArchiveDestination
    ) async throws -> Manifest.Schema? {
        if options.dataOnly { return nil }
        // A full backup (`selected` nil) dumps the whole schema (functions,
        // views, types...); a selective one names its tables.
        var tableArgs: [String] = []
        for r in selected ?? [] {
            tableArgs += ["--table", "\"\(r.table.schema.replacingOccurrences(of: "\"", with: "\"\""))\".\"\(r.table.name.replacingOccurrences(of: "\"", with: "\"\""))\""]
        }
        let conninfo = options.conninfo
        let selectionArgs = tableArgs
        let pgBin = options.pgBin
        let lockWait = options.lockWaitTimeout
        let dump = staging + "/schema/schema.dump"
        defer { unlink(dump) }
        let (tools, lists) = try await Blocking.run("pgvault-pg_dump") {
            let tools = try PGTools.locate(serverMajor: serverMajor, serverVersion: serverVersion, pgBin: pgBin)
            // One pg_dump reads the catalog once into a custom-format file;
            // pg_restore writes each section's script from that file, with no
            // database (the same text `pg_dump --section` prints, without a
            // second read of the catalog).
            // pg_dump 18 also dumps the optimizer statistics: everything but
            // the data (`--schema-only` excludes statistics too).
            let statistics = tools.majorVersion >= 18
            // pg_dump starts before the leader's locks are taken: it must not
            // wait on a table longer than they may (`--lock-wait-timeout`).
            let args = [statistics ? "--no-data" : "--schema-only", "--format=custom", "--compress=0", "--file=\(dump)", "--snapshot=\(snapshot)", "--no-password", "--lock-wait-timeout=\(lockWait)"]
                + (statistics ? ["--statistics"] : []) + selectionArgs
            let result = try tools.run("pg_dump", conninfo: conninfo, arguments: args)
            guard result.status == 0 else {
                throw PGVaultError(.server, "pg_dump \(tools.versionString) (\(tools.binDir)) failed to dump the schema: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            // Statistics entries (of tables in the data section, of indexes in
            // post-data) go to a member of their own, applied last.
            var lists: [String: String] = [:]
            if statistics {
                let tocPath = staging + "/schema/schema.toc"
                defer { unlink(tocPath) }
                let toc = try tools.run("pg_restore", conninfo: nil, arguments: ["--list", "--file=\(tocPath)", dump])
                guard toc.status == 0 else {
                    throw PGVaultError.io("pg_restore \(tools.versionString) (\(tools.binDir)) failed to list the schema dump: \(toc.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
                let entries = try String(contentsOfFile: tocPath, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix(";") }
                for (name, keep) in [("statistics", true), ("no-statistics", false)] {
                    let path = staging + "/schema/\(name).list"
                    try (entries.filter { $0.contains(" STATISTICS DATA ") == keep }.joined(separator: "\n") + "\n")
                        .write(toFile: path, atomically: false, encoding: .utf8)
                    lists[name] = path
                }
            }
            return (tools, lists)
        }
        defer { for path in lists.values { unlink(path) } }
        // pg_restore writes the sections' scripts at once, each on a thread
        // of its own (at 1,000 partitions each takes some 0.15 s, and the
        // backup waits on the last); they are compressed one after another,
        // so this process holds one compressor for them, as before.
        let scripts: [(name: String, arguments: [String])] = [
            ("pre-data", ["--section=pre-data"]),
            ("post-data", ["--section=post-data"] + (lists["no-statistics"].map { ["--use-list=\($0)"] } ?? [])),
        ] + (lists["statistics"].map { [("statistics", ["--use-list=\($0)"])] } ?? [])
        let plains = scripts.map { staging + "/schema/\($0.name).sql" }
        defer { for plain in plains { unlink(plain) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for ((section, arguments), plain) in zip(scripts, plains) {
                group.addTask {
                    try await Blocking.run("pgvault-pg_restore") {
                        let result = try tools.run("pg_restore", conninfo: nil, arguments: arguments + ["--file=\(plain)", dump])
                        guard result.status == 0 else {
                            throw PGVaultError.io("pg_restore \(tools.versionString) (\(tools.binDir)) failed to write the \(section) schema: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let members = try await Blocking.run("pgvault-schema-compress") {
            try zip(scripts, plains).map { script, plain in
                if let chunks = destination.chunks { try chunks.repository.key.pinRestrictKey(inFile: plain) }
                return try compressFile(plain, member: "schema/\(script.name).sql.zst", into: destination)
            }
        }
        return Manifest.Schema(
            pgDumpVersion: tools.versionString, preData: members[0], postData: members[1], statistics: members.count > 2 ? members[2] : nil)
    }

    /// Writes the local file `path` (pg_restore's script) as the compressed member `member`.
    static func compressFile(_ path: String, member: String, into destination: ArchiveDestination) throws -> Manifest.Member {
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? input.close() }
        // A modest level keeps zstd's memory (and so peak RSS) low: this runs
        // beside the data's compressors, and PostgreSQL 18's statistics make
        // the text several MiB (level 3's tables are about half of level 6's).
        let out = try destination.member(member, level: 3)
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
