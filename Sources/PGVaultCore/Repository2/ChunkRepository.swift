import AgeFormat
import CryptoDigest
import Foundation

/// A format-2 repository (docs/repository-format.md): content-defined chunks,
/// deduplicated by a keyed id, zstd-compressed, encrypted to age recipients,
/// in packs; per backup a catalog (for the writer) and a manifest (for a
/// reader with the identity), the manifest written last. Every object is
/// reached through an ``ObjectStore``; nothing relies on a rename or an append.
///
/// Objects:
/// - `config`: MAC-trailed JSON (``RepositoryConfig``);
/// - `keys/secret.age`: the key file, age-encrypted to the recipients;
/// - `packs/<xx>/<id>`: chunks' zstd frames, an age file when encrypted;
/// - `index/<pack id>`: where each chunk of that pack lies, sealed;
/// - `snapshots/<name>/catalog`: what `list` and `prune` need, sealed;
/// - `snapshots/<name>/manifest`: the backup's manifest, MAC-trailed, then age;
/// - `locks/<id>`: who is using the repository.
public final class ChunkRepository: Sendable {
    public let store: any ObjectStore
    public let config: RepositoryConfig
    let key: RepositoryKey
    /// Empty for a writer: it can store and list, not read table data.
    let identities: [AgeIdentity]
    /// Where they came from, for messages ("" without).
    let identityFile: String

    public static let secretObjectKey = "keys/secret.age"

    private init(store: any ObjectStore, config: RepositoryConfig, key: RepositoryKey, identities: [AgeIdentity], identityFile: String?) {
        self.store = store
        self.config = config
        self.key = key
        self.identities = identities
        self.identityFile = identityFile ?? ""
    }

    public var location: String { store.location }
    public var fingerprint: String { key.fingerprint }
    public var canReadData: Bool { !config.encrypted || !identities.isEmpty }

    /// The recipients packs and manifests are encrypted to (nil: unencrypted).
    func recipients() throws -> [AgeRecipient]? {
        guard config.encrypted else { return nil }
        return try config.recipients.map { text in
            do { return try AgeRecipient(parsing: text) } catch {
                throw PGVaultError.archive("repository '\(location)' names a recipient that is not an age public key ('\(text)')")
            }
        }
    }

    /// Is there a format-2 repository in `store` (its `config`)?
    public static func exists(in store: any ObjectStore) throws -> Bool {
        try store.head(RepositoryConfig.objectKey) != nil
    }

    // MARK: - Creating

    /// `repo init`: a new key (written to `keyFile`, or its default place),
    /// then `keys/secret.age`, then `config` last (its presence makes the
    /// folder a repository). Refuses a store that holds anything.
    public static func create(
        store: any ObjectStore, recipients: [AgeRecipient], encrypted: Bool, keyFile: String?,
        chunker: ChunkerParameters = .standard, packTargetBytes: Int = RepositoryConfig.defaultPackTargetBytes
    ) throws -> (repository: ChunkRepository, keyFile: String) {
        guard encrypted == !recipients.isEmpty else {
            throw PGVaultError.usage(encrypted
                ? "an encrypted repository needs at least one recipient: give --encrypt-to age1... or --recipients-file FILE (or --no-encryption, to store backups in the clear)"
                : "--no-encryption and --encrypt-to/--recipients-file contradict each other; give one")
        }
        let existing = try store.list(prefix: "")
        guard existing.isEmpty else {
            throw PGVaultError.usage("'\(store.location)' is not empty (it holds \(existing[0].key)); `repo init` creates a repository only in an empty folder or prefix: choose another --repo")
        }
        let id = Hex.encode(try SecureRandom.bytes(16))
        let key = try RepositoryKey.generate(repositoryID: id)
        let config = RepositoryConfig(
            id: id, createdAt: ISO8601.format(Date()), encrypted: encrypted, recipients: recipients.map(\.description),
            chunker: .init(minimumSize: chunker.minimumSize, averageSize: chunker.averageSize, maximumSize: chunker.maximumSize, normalization: chunker.normalization),
            packTargetBytes: packTargetBytes)
        let path = keyFile ?? RepositoryKey.defaultPath(repositoryID: id)
        try key.write(path: path)
        if encrypted {
            let wrapped: [UInt8]
            do { wrapped = try Age.encrypt(Array(key.fileText().utf8), to: recipients) } catch {
                throw PGVaultError.archive("cannot encrypt the repository key: \(error)")
            }
            try store.put(secretObjectKey, bytes: wrapped, ifAbsent: true)
        }
        try store.put(RepositoryConfig.objectKey, bytes: try config.encoded(key: key), ifAbsent: true)
        return (ChunkRepository(store: store, config: config, key: key, identities: [], identityFile: nil), path)
    }

    // MARK: - Opening

    /// What a command was given to open a repository with.
    public struct Credentials: Sendable {
        /// The writer's key file (`--key-file`); nil: its default place.
        public var keyFile: String?
        /// An age identity file (`--identity`): reads table data, and the key
        /// from `keys/secret.age` when no key file is at hand.
        public var identityFile: String?

        public init(keyFile: String? = nil, identityFile: String? = nil) {
            self.keyFile = keyFile
            self.identityFile = identityFile
        }
    }

    /// Opens the repository in `store`, authenticating its config with the
    /// key: from `--key-file`, else from `keys/secret.age` with the identity,
    /// else from the key file's default place.
    public static func open(store: any ObjectStore, credentials: Credentials) throws -> ChunkRepository {
        let configBytes: [UInt8]
        do {
            configBytes = try store.bytes(of: RepositoryConfig.objectKey, limit: 1 << 20)
        } catch let error as PGVaultError where error.isMissingObject {
            throw PGVaultError.archive("'\(store.location)' is not a pgvault repository (it has no config); check --repo, or create one with `pgvault repo init --repo \(store.location)`", wholeArchive: true)
        }
        let peeked = try RepositoryConfig.peek(configBytes, location: store.location)
        let identities = try credentials.identityFile.map(readIdentities) ?? []
        let key: RepositoryKey
        if let keyFile = credentials.keyFile {
            key = try RepositoryKey.read(path: keyFile)
        } else if !identities.isEmpty, peeked.encrypted {
            key = try unwrapKey(store: store, identities: identities, identityFile: credentials.identityFile ?? "")
        } else if Files.exists(RepositoryKey.defaultPath(repositoryID: peeked.id)) {
            key = try RepositoryKey.read(path: RepositoryKey.defaultPath(repositoryID: peeked.id))
        } else {
            throw PGVaultError.usage("repository '\(store.location)' needs its key: give --key-file FILE (the key `repo init` wrote; it looked in \(RepositoryKey.defaultPath(repositoryID: peeked.id))) or --identity FILE (an age identity the repository encrypts to)")
        }
        let config = try RepositoryConfig.authenticated(configBytes, key: key, location: store.location)
        return ChunkRepository(store: store, config: config, key: key, identities: identities, identityFile: credentials.identityFile)
    }

    /// The identities of an age identity file; its text is never shown.
    static func readIdentities(_ path: String) throws -> [AgeIdentity] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PGVaultError.usage("cannot read the identity file '\(path)'; give an age identity file (as age-keygen writes it) with --identity")
        }
        let identities: [AgeIdentity]
        do {
            identities = try AgeIdentityFile.parse(String(decoding: data, as: UTF8.self), source: "'\(path)'")
        } catch {
            throw PGVaultError.usage("\(error.detail); give an age identity file (as age-keygen writes it) with --identity")
        }
        guard !identities.isEmpty else {
            throw PGVaultError.usage("'\(path)' holds no AGE-SECRET-KEY-1 line; give an age identity file (as age-keygen writes it) with --identity")
        }
        return identities
    }

    static func unwrapKey(store: any ObjectStore, identities: [AgeIdentity], identityFile: String) throws -> RepositoryKey {
        let wrapped = try store.bytes(of: secretObjectKey, limit: 1 << 20)
        let plain: [UInt8]
        do { plain = try Age.decrypt(wrapped, with: identities) } catch {
            throw PGVaultError.archive(Self.identityMismatch(identityFile, object: secretObjectKey, location: store.location, error: error))
        }
        return try RepositoryKey.parse(plain, source: "\(store.location)/\(secretObjectKey)")
    }

    static func identityMismatch(_ identityFile: String, object: String, location: String, error: AgeError) -> String {
        switch error.kind {
        case .noMatchingIdentity:
            return "the identity '\(identityFile)' cannot decrypt \(location)/\(object): it is not one of the repository's recipients; give the identity whose public key `pgvault repo init` printed"
        default:
            return "\(location)/\(object) does not decrypt: \(error.detail); the object is damaged or was not written by pgvault (run `pgvault check --repo \(location)`)"
        }
    }

    /// A read of table data needs the identity of an encrypted repository.
    func requireIdentity(_ what: String) throws {
        guard canReadData else {
            throw PGVaultError.usage("\(what) reads table data, which repository '\(location)' keeps encrypted: give --identity FILE (the age identity whose public key the repository encrypts to; keep it offline, not on the backup host)")
        }
    }
}
