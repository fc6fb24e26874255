import Foundation

/// The object `config` of a format-2 repository: what kind it is, whom it
/// encrypts to, and how it cuts and packs chunks. Written once by `repo init`,
/// MAC-trailed with the repository key (a swapped recipient list would make
/// the next backups readable by someone else, so the writer checks it).
public struct RepositoryConfig: Codable, Sendable, Equatable {
    public static let objectKey = "config"
    public static let formatName = "pgvault-repository"
    public static let currentVersion = 2

    public var format = RepositoryConfig.formatName
    public var version = RepositoryConfig.currentVersion
    /// 32 hex digits, random: names the key file and salts the key derivation.
    public var id: String
    public var createdAt: String
    /// Packs and manifests are age files to `recipients`; false only with
    /// `repo init --no-encryption`.
    public var encrypted: Bool
    public var recipients: [String]
    public var chunker: Chunking
    /// A pack is closed once its chunks reach this many bytes.
    public var packTargetBytes: Int

    public struct Chunking: Codable, Sendable, Equatable {
        public var algorithm = "fastcdc"
        public var minimumSize: Int
        public var averageSize: Int
        public var maximumSize: Int
        public var normalization: Int
    }

    /// 32 MiB: tens of MiB as object stores like them (a request per pack
    /// read whole, few objects to list), and at most one open pack per
    /// running unit (docs/repository-format.md, "Packs").
    public static let defaultPackTargetBytes = 32 << 20

    /// The chunker's parameters: the config's sizes, and a gear table whose
    /// seed comes from the key, so that chunk boundaries (and so sizes) are
    /// not the same in every repository (restic keys its polynomial the same way).
    func chunkerParameters(key: RepositoryKey) throws -> ChunkerParameters {
        let seed = key.chunkIDKey.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return try ChunkerParameters(
            minimumSize: chunker.minimumSize, averageSize: chunker.averageSize, maximumSize: chunker.maximumSize,
            normalization: chunker.normalization, gear: GearTable(seed: seed))
    }

    func encoded(key: RepositoryKey) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try Sealing.macTrailed(Array(try encoder.encode(self)) + [0x0A], key: key, objectKey: Self.objectKey)
    }

    /// The config's body, unauthenticated: enough to learn the repository's id
    /// (to find its key) and whether it is encrypted. Everything else waits
    /// for ``authenticated(_:key:location:)``.
    static func peek(_ bytes: [UInt8], location: String) throws -> RepositoryConfig {
        let body = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast(2).joined(separator: [0x0A])
        guard let config = try? JSONDecoder().decode(RepositoryConfig.self, from: Data(Array(body))), config.format == formatName else {
            throw PGVaultError.archive("'\(location)/config' is not a pgvault repository config; check --repo")
        }
        guard config.version <= currentVersion else {
            throw PGVaultError.archive("repository '\(location)' is format \(config.version), newer than this pgvault (\(PGVault.version)) reads; upgrade pgvault")
        }
        return config
    }

    static func authenticated(_ bytes: [UInt8], key: RepositoryKey, location: String) throws -> RepositoryConfig {
        guard key.repositoryID == (try peek(bytes, location: location)).id else {
            throw PGVaultError.archive("the key given is for repository \(key.repositoryID), not for '\(location)'; give this repository's key file (--key-file) or identity (--identity)")
        }
        let body = try Sealing.openMACTrailed(bytes, key: key, objectKey: objectKey, location: location)
        return try JSONDecoder().decode(RepositoryConfig.self, from: Data(body))
    }
}
