public struct BackupOptions: Sendable {
    public enum Form: String, Sendable, CaseIterable { case directory, file }

    public var conninfo: String
    /// Final path of the archive (a directory, or a file), or "-" for a tar on stdout.
    public var output: String
    public var form: Form
    /// `output` is a wanted name in a repository (``Repository/newBackupPath``):
    /// when another backup has it, this one takes the first free `-N` suffix.
    public var uniqueName = false
    /// A repository folder to name the backup in (`--repo`), instead of
    /// `output`: the name is `<database>-<start time>`, the database being the
    /// one the leader connection reports, claimed as with `uniqueName`.
    public var repository: String?
    /// A format-2 repository's key file (nil: its default place).
    public var keyFile: String?
    public var jobs: Int = 2
    /// Shell-style patterns (`*`, `?`) on `schema.table` or `table`; a partitioned
    /// parent selects its partitions.
    public var tables: [String] = []
    public var excludeTables: [String] = []
    public var schemaOnly = false
    public var dataOnly = false
    /// zstd level. 2, not zstd's default 3: on the chat data's binary COPY it
    /// compresses within 5 % of level 3 for about 30 % less CPU, and the
    /// client's CPU is what the backup shares with the server's COPY
    /// (docs/benchmarks.md).
    public var compressionLevel: Int32 = 2
    /// `true`: binary COPY for every table whose column types allow it
    /// (``CopyFormat``); `false`: text for all.
    public var binaryCopy = true
    /// Tables or partitions larger than this are split into ctid ranges of about this size.
    public var splitBytes: Int64 = 256 << 20
    /// Into a format-2 repository: take a unit whose fingerprint equals the
    /// previous backup's from that backup instead of reading it again
    /// (``UnchangedUnits``). `--read-unchanged` sets it false.
    public var reuseUnchanged = true
    /// How long to wait for each ACCESS SHARE lock, e.g. "30s".
    public var lockWaitTimeout: String = "30s"
    public var pgBin: String?
    /// Called about once a second with the progress so far.
    public var progress: (@Sendable (BackupProgress) -> Void)?

    public init(conninfo: String, output: String, form: Form = .directory) {
        self.conninfo = conninfo
        self.output = output
        self.form = output == "-" ? .file : form
    }
}
