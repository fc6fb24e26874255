import ArchiveIO

extension Archive {
    /// A member a reader is about to need, with the size its manifest records.
    public struct ExpectedMember: Sendable, Equatable {
        public var name: String
        public var bytes: Int64
        /// What it holds, for the message (`table public.users`, `the pre-data schema`).
        public var what: String

        public init(name: String, bytes: Int64, what: String) {
            self.name = name
            self.bytes = bytes
            self.what = what
        }
    }

    /// Checks that every member in `expected` is in the archive with its
    /// recorded size, from the directory's entries or the tar's headers alone
    /// (no member's data is read: a tar on disk is skipped through by seeking).
    /// A restore calls it before it changes the target, so a missing or cut
    /// member stops it while nothing is changed; the SHA-256 of each member is
    /// still checked while it streams. `label` is the archive as the user named it.
    public static func checkMembers(_ expected: [ExpectedMember], in source: ArchiveSource, label: String) throws {
        let present: [String: Int64]
        do {
            // A tar's first entry of a name is the one readMember streams.
            present = Dictionary(try source.listMembers().map { ($0.name, $0.size) }, uniquingKeysWith: { first, _ in first })
        } catch let error as ArchiveError {
            throw PGVaultError.archive("archive \(label) cannot be read through: \(error). It is damaged or cut short; restore from an intact copy of it, or take a new backup.")
        }
        var problems: [String] = []
        for m in expected {
            guard let size = present[m.name] else {
                problems.append("member \(m.name) (\(m.what)) is missing")
                continue
            }
            if size != m.bytes {
                problems.append("member \(m.name) (\(m.what)) has \(size) bytes but the manifest records \(m.bytes)")
            }
        }
        guard problems.isEmpty else {
            throw PGVaultError.archive("archive \(label) is not whole: \(problems.count) of its \(expected.count) members needed here are missing or of the wrong size:\n"
                + problems.prefix(20).map { "  - \($0)" }.joined(separator: "\n") + (problems.count > 20 ? "\n  - ..." : "")
                + "\nIt was damaged after the backup (a copy cut short, a file removed). Restore from an intact copy of it (pgvault verify ARCHIVE checks one), or take a new backup.")
        }
    }
}
