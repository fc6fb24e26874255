/// pgvault's version, shown by `--version` and written into every manifest.
public enum PGVault {
    public static let version = "0.1.0"
}
