/// A package written and closed (not yet under its final name).
public struct UserExportResult: Sendable {
    public let userID: Int64
    public let publicID: String
    /// username#discriminator
    public let tag: String
    public let generatedAt: String
    /// The snapshot's transaction start time (ISO-8601 UTC).
    public let snapshotAt: String
    public let counts: UserExportCounts
    /// Files in the package, manifest.json included.
    public let files: Int
}

/// A package under its final name.
public struct UserExportSummary: Sendable {
    public let result: UserExportResult
    public let path: String
    public let bytes: Int64
    public let sha256: String
    public let elapsedSeconds: Double
}
