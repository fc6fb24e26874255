import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

/// `--dbname/-d`, shared by every command that talks to a database.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: [.customShort("d"), .long],
        help: ArgumentHelp(
            "Database to connect to: a conninfo string or a postgresql:// URI.",
            discussion: "Missing parts come from PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD and ~/.pgpass.",
            valueName: "CONN"))
    var dbname: String = ""

    func validate() throws {
        if !dbname.isEmpty {
            do { _ = try ConnInfo.parseOrThrow(dbname) } catch let error as PGError {
                throw ValidationError("'--dbname': \(error.message)")
            }
            hidePasswordFromCommandLine(dbname)
        }
    }

    /// Opens a connection; failures print the server's message (no password).
    func connect(application: String = "pgvault") throws -> PGConnection {
        try PGConnection(conninfo: dbname, applicationName: application)
    }

    /// What to show in logs for this database: the conninfo without secrets.
    var display: String { ConnInfo.redacted(dbname) }

    /// The database's name as libpq will pick it, for failure reports made
    /// before (or without) a connection.
    var databaseName: String { ConnInfo.databaseName(dbname) }
}

/// `--table`/`--exclude-table`, shared by backup and restore.
struct TableSelectionOptions: ParsableArguments {
    @Option(name: [.short, .long], parsing: .singleValue, help: ArgumentHelp("Only tables matching this pattern (schema.table or table; * and ?). Repeatable; a partitioned table takes its partitions.", valueName: "PATTERN"))
    var table: [String] = []

    @Option(name: [.customShort("T"), .long], parsing: .singleValue, help: ArgumentHelp("Leave out tables matching this pattern. Repeatable.", valueName: "PATTERN"))
    var excludeTable: [String] = []
}

/// Writes a line to standard error (diagnostics and progress; standard output is
/// kept for results and JSON).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A password given in `--dbname` (a URI or `password=`) would show in `ps` and
/// /proc/<pid>/cmdline for as long as pgvault runs: overwrite that argument in
/// place (arguments were already parsed) with its redacted form, padded with spaces.
func hidePasswordFromCommandLine(_ dbname: String) {
    guard let options = ConnInfo.parse(dbname), options.contains(where: { ConnInfo.secretKeywords.contains($0.key) }) else { return }
    let redacted = Array(ConnInfo.redacted(dbname).utf8)
    for i in 1..<max(1, Int(CommandLine.argc)) {
        guard let arg = CommandLine.unsafeArgv[i] else { continue }
        let length = strlen(arg)
        let text = String(cString: arg)
        guard text == dbname || text == "--dbname=" + dbname || text == "-d" + dbname else { continue }
        for j in 0..<length {
            arg[j] = CChar(bitPattern: j < redacted.count ? redacted[j] : 0x20)
        }
    }
}

/// `--repo DIR --backup NAME` and the keys to read it with: a backup of a
/// format-2 repository, in place of an ARCHIVE (restore, verify).
struct RepositoryBackupOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A format-2 repository (pgvault repo init) to read a backup of, instead of ARCHIVE.", valueName: "DIR"))
    var repo: String?

    @OptionGroup var s3: S3EndpointOption

    @Option(help: ArgumentHelp("With --repo: the backup's name (pgvault list), or latest.", valueName: "NAME"))
    var backup: String = "latest"

    @Option(help: ArgumentHelp("With --repo: an age identity file (as age-keygen writes it) that decrypts the repository's backups.", valueName: "FILE"))
    var identity: String?

    @Option(help: ArgumentHelp("With --repo: the repository key file (default: ~/.config/pgvault/keys/<id>.key; not needed with --identity).", valueName: "FILE"))
    var keyFile: String?

    var credentials: ChunkRepository.Credentials { .init(keyFile: keyFile, identityFile: identity) }

    /// Checks that ARCHIVE and --repo are not both given (or both missing when `required`).
    func validate(archive: String?, required: Bool) throws {
        if archive != nil && repo != nil { throw ValidationError("give ARCHIVE or '--repo DIR', not both") }
        if required && archive == nil && repo == nil { throw ValidationError("give an ARCHIVE, or '--repo DIR' (with '--backup NAME')") }
        if repo == nil && (identity != nil || keyFile != nil) { throw ValidationError("'--identity' and '--key-file' go with '--repo'") }
    }

    /// The backup, opened and its manifest authenticated (blocking: on a worker thread).
    func open(command: String) async throws -> RepositoryBackup? {
        guard let repo else { return nil }
        let credentials = credentials, backup = backup
        return try await Blocking.run("pgvault-repository-open") {
            try RepositoryBackup.open(backup, in: try ChunkRepository.open(path: repo, credentials: credentials), command: command)
        }
    }
}
