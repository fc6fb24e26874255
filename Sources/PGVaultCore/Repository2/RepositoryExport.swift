import Foundation
import PGClient

/// `repo export`: a backup of a format-2 repository written out as a
/// standalone archive of format 1 (docs/archive-format.md), the one
/// `pgvault backup --output` writes: every member's raw bytes (read from its
/// chunks, each checked by its id) compressed again with zstd into one member
/// object, the manifest rewritten for those members (their sizes and
/// SHA-256, no chunks, no packs) and written last, then the staging folder
/// renamed into place (or a tar written under a temporary name, fsynced and
/// renamed), as a backup publishes. Nothing is left at `output` unless the
/// whole archive is.
public enum RepositoryExport {
    public struct Result: Codable, Sendable {
        public var status = "exported"
        public var repository: String
        public var backup: String
        public var output: String
        public var form: String
        public var members: Int
        /// Bytes of the archive written.
        public var bytes: Int64
    }

    /// Writes `backup` to `output`: a tar when it ends in `.tar`, else a folder.
    public static func run(_ backup: RepositoryBackup, output: String) throws -> Result {
        let form: BackupOptions.Form = output.hasSuffix(".tar") ? .file : .directory
        let staging = try BackupEngine.stagingFolder(near: output)
        PartialOutputs.register(staging)
        defer {
            Files.removeTree(staging)
            PartialOutputs.forget(staging)
        }
        try Files.makeDirectory(staging + "/data")
        try Files.makeDirectory(staging + "/schema")
        let destination = ArchiveDestination(stagingFolder: staging)
        var manifest = try MemberRecoding.copy(backup.manifest, from: ArchiveLocation.backup(backup).open(), into: destination)
        manifest.packs = nil
        try Cancellation.check()
        // Every member is committed (whole, fsynced); the manifest is last.
        try destination.put(manifest)
        let bytes = try BackupEngine.publish(staging: staging, manifest: manifest, form: form, output: output)
        return Result(
            repository: backup.repository.location, backup: backup.name, output: output, form: form.rawValue,
            members: manifest.units.count + (manifest.schema == nil ? 0 : 2), bytes: bytes)
    }
}

/// Copies every member of an archive (schema scripts, then units) from
/// `source`, as its raw bytes (decompressed and checked against the
/// manifest), into `destination`: zstd member objects of an archive, or
/// chunks of a format-2 repository. Returns the manifest with each member's
/// new size, SHA-256 and chunk list; everything else is kept (`packs` is the
/// caller's).
enum MemberRecoding {
    static func copy(_ manifest: Manifest, from source: ArchiveSource, into destination: ArchiveDestination) throws -> Manifest {
        var out = manifest
        let level = Int32(manifest.compression.level)
        out.schema = try manifest.schema?.mapMembers { try copy($0, from: source, into: destination, level: level) }
        for (i, unit) in manifest.units.enumerated() {
            try Cancellation.check()
            let member = try destination.member(unit.member, level: level)
            let encoded = try writing(member) {
                try Archive.streamUnit(unit, from: source) { try member.compress($0) }
            }
            out.units[i].compressedBytes = encoded.bytes
            out.units[i].sha256 = encoded.sha256
            out.units[i].chunks = encoded.chunks
        }
        return out
    }

    private static func copy(_ script: Manifest.Member, from source: ArchiveSource, into destination: ArchiveDestination, level: Int32) throws -> Manifest.Member {
        try Cancellation.check()
        let member = try destination.member(script.member, level: level)
        let encoded = try writing(member) {
            try Archive.streamMember(script.member, expectedBytes: script.bytes, sha256: script.sha256, from: source, maxOutput: nil) { try member.compress($0) }
        }
        var out = script
        out.bytes = encoded.bytes
        out.sha256 = encoded.sha256
        out.chunks = encoded.chunks
        return out
    }

    /// Runs `feed`, then finishes the member; a member that fails leaves nothing.
    private static func writing(_ member: CompressedMember, _ feed: () throws -> Void) throws -> EncodedMember {
        do {
            try feed()
            return try member.finish()
        } catch {
            member.abort()
            throw error
        }
    }
}
