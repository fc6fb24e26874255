import CryptoDigest
import Foundation
import PGClient

extension RestoreEngine {
    /// `-`: standard input copied to a temporary file (``ArchiveSpool`` says
    /// why), which the returned spool keeps until the restore ends.
    static func readingStandardInput(
        _ options: RestoreOptions, log: @Sendable (String) -> Void
    ) async throws -> (RestoreOptions, ArchiveSpool?) {
        guard options.archive == "-" else { return (options, nil) }
        let spool = try await ArchiveSpool.standardInput()
        log("copied the archive from standard input to \(spool.path) (\(spool.bytes) bytes; removed at the end)")
        var options = options
        options.spooledArchive = spool.path
        return (options, spool)
    }

    /// The schema members (unless --data-only) and the selected tables' units.
    static func neededMembers(_ manifest: Manifest, selected: [Manifest.Table], dataOnly: Bool) -> [Archive.ExpectedMember] {
        var out: [Archive.ExpectedMember] = []
        if !dataOnly, let schema = manifest.schema {
            out.append(.init(name: schema.preData.member, bytes: schema.preData.bytes, what: "the pre-data schema"))
            out.append(.init(name: schema.postData.member, bytes: schema.postData.bytes, what: "the post-data schema"))
            if let statistics = schema.statistics {
                out.append(.init(name: statistics.member, bytes: statistics.bytes, what: "the optimizer statistics"))
            }
        }
        let tables = Set(selected.map(\.qualifiedName))
        for u in manifest.units where tables.contains(u.qualifiedTable) {
            out.append(.init(name: u.member, bytes: u.compressedBytes, what: "unit \(u.id) of table \(u.qualifiedTable)"))
        }
        return out
    }
}

extension RestoreEngine {
    /// Whether a journal's archive id names this archive: the SHA-256 of
    /// its manifest's bytes. Earlier builds hashed the manifest encoded
    /// again (a second copy of it in memory, and more), which differs only
    /// for a manifest pgvault did not write byte for byte; a restore one of
    /// them left unfinished is resumed too.
    static func sameArchive(journal: String, archiveID: String, manifest: Manifest) -> Bool {
        guard journal != archiveID else { return true }
        let reencoded = try? { () throws -> String in
            let digest = try SHA2(.sha256)
            try manifest.encode { try digest.update($0) }
            return try digest.hexDigest()
        }()
        return journal == reencoded
    }
}
