import Foundation

/// What `--repo` names: a folder of this machine, or `s3://BUCKET/PREFIX`.
/// Deciding is pure (a test gives it text); ``store(endpoint:environment:)``
/// opens the store.
public enum RepositoryLocation: Equatable, Sendable {
    case folder(String)
    /// The `s3://` URL as given.
    case s3(String)

    public init(_ text: String) {
        self = text.lowercased().hasPrefix("s3://") ? .s3(text) : .folder(text)
    }

    /// The store: the folder as it is, or the bucket configured the AWS way
    /// (`endpoint` is `--s3-endpoint`; docs/storage.md, "S3").
    public func store(endpoint: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any ObjectStore {
        switch self {
        case .folder(let path): LocalFolderStore(root: path)
        case .s3(let url): try S3ObjectStore.open(url, endpoint: endpoint, environment: environment)
        }
    }
}
