import ArchiveIO
import Foundation
import PGClient

extension BackupEngine {
    // MARK: - Output

    /// Creates the staging folder; returns it and the archive's final path
    /// (in a repository, the name ``RepositoryNames/claim(_:)`` found free).
    static func stagingFolder(for options: BackupOptions) throws -> (staging: String, output: String) {
        var output = options.output
        let path: String
        if options.output == "-" {
            path = try Files.spoolFolder()
        } else {
            if options.uniqueName {
                try OutputPath.checkFolder(of: options.output, what: "--repo")
                (output, path) = try RepositoryNames.claim(options.output)
            } else {
                path = try stagingFolder(near: options.output)
            }
        }
        try Files.makeDirectory(path + "/data")
        try Files.makeDirectory(path + "/schema")
        return (path, output)
    }

    /// Checks that `output` (`--output`) is new and creates, owner-only, the
    /// hidden staging folder `.<name>.partial-<pid>` beside it.
    static func stagingFolder(near output: String) throws -> String {
        try OutputPath.checkNew(output, what: "--output")
        let dir = (output as NSString).deletingLastPathComponent
        let name = (output as NSString).lastPathComponent
        let path = (dir.isEmpty ? "." : dir) + "/." + name + ".partial-\(getpid())"
        Files.removeTree(path)
        try Files.makeDirectory(path)
        return path
    }

    /// Directory form: rename the staging folder. File form: write a tar of its
    /// members (manifest.json last) under a temporary name, fsync, rename; or
    /// stream the tar to standard output. Returns the archive's size.
    static func publish(staging: String, manifest: Manifest, options: BackupOptions) throws -> Int64 {
        try publish(staging: staging, manifest: manifest, form: options.form, output: options.output)
    }

    /// ``publish(staging:manifest:options:)`` for any writer of a staging
    /// folder (the backup engine, `repo export`).
    static func publish(staging: String, manifest: Manifest, form: BackupOptions.Form, output: String) throws -> Int64 {
        var members = manifest.units.map { ($0.member, $0.compressedBytes) }
        if let schema = manifest.schema {
            members.insert(contentsOf: schema.members.map { ($0.member, $0.bytes) }, at: 0)
        }
        let manifestSize = (try FileManager.default.attributesOfItem(atPath: staging + "/" + Manifest.memberName)[.size] as? NSNumber)?.int64Value ?? 0
        members.append((Manifest.memberName, manifestSize))
        let total = members.reduce(0) { $0 + $1.1 }
        switch (form, output) {
        case (.directory, _):
            try PartialOutputs.publishing(staging) { try Files.publish(staging, as: output) }
            return total
        case (.file, "-"):
            let writer = try ArchiveWriter(fileDescriptor: 1, format: .tarPax, label: "standard output")
            try writeTar(writer, staging: staging, members: members)
            return total
        case (.file, _):
            let partial = staging + ".tar"
            PartialOutputs.register(partial)
            defer { PartialOutputs.forget(partial) }
            let writer = try ArchiveWriter(path: partial, format: .tarPax)
            do {
                try writeTar(writer, staging: staging, members: members)
                try PartialOutputs.publishing(partial) { try Files.publish(partial, as: output) }
            } catch {
                unlink(partial)
                throw error
            }
            return (try FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.int64Value ?? total
        }
    }

    static func writeTar(_ writer: ArchiveWriter, staging: String, members: [(String, Int64)]) throws {
        for (member, size) in members {
            try Cancellation.check()
            let source = DirectoryArchive(staging)
            try writer.addFile(path: member, size: size) { write in
                try source.readMember(member) { try write($0) }
            }
        }
        try writer.close()
    }
}
