import CryptoDigest
import Foundation
import PGClient

/// One migration of a sqlx-style folder: `<version>_<name>.up.sql` with its
/// `<version>_<name>.down.sql` (or a simple, irreversible `<version>_<name>.sql`).
public struct Migration: Sendable, Equatable {
    public let version: Int64
    /// As sqlx derives it: the file name after the version, underscores as spaces.
    public let description: String
    public let upSQL: String
    public let downSQL: String?
    /// SHA-384 of the up file's bytes, as sqlx stores it in `_sqlx_migrations.checksum`.
    public let checksum: [UInt8]
    /// The file starts with `-- no-transaction` (sqlx's marker): run it outside a transaction.
    public let noTransaction: Bool
    public let fileName: String
}

/// Where migrations come from: a sqlx-style folder (`--source DIR`), or the copy
/// of migrations/ built into pgvault (Migrations+Embedded.swift), as sqlx's
/// `migrate!` embeds them, so an installed pgvault migrates from any folder.
public enum MigrationSource {
    /// The migrations built into this executable.
    public static func embedded() throws -> [Migration] {
        try resolve(embeddedFiles.map { (name: $0.name, bytes: Array($0.text.utf8)) }, origin: "built-in migrations")
    }

    /// Reads a migrations folder exactly as sqlx resolves it.
    public static func load(directory: String) throws -> [Migration] {
        let names: [String]
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw PGVaultError(.io, "the migrations folder '\(directory)' does not exist; pass --source DIR with the folder of <version>_<name>.up.sql files")
        }
        guard isDir.boolValue else {
            throw PGVaultError(.io, "the migrations folder '\(directory)' is not a folder; pass --source DIR with the folder of <version>_<name>.up.sql files")
        }
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PGVaultError(.io, "cannot read the migrations folder '\(directory)': \(Files.reason(error)); check its permissions or pass --source DIR")
        }
        let files = try names.filter { $0.hasSuffix(".sql") }.map { name in
            do {
                return (name: name, bytes: try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))))
            } catch {
                throw PGVaultError(.io, "cannot read migration file '\(directory)/\(name)': \(Files.reason(error)); check its permissions")
            }
        }
        return try resolve(files, origin: "the migrations folder '\(directory)'")
    }

    /// sqlx's rules over (file name, bytes): versions from the names, up/down pairs,
    /// SHA-384 of the up file. `origin` names where the files came from in errors.
    static func resolve(_ files: [(name: String, bytes: [UInt8])], origin: String) throws -> [Migration] {
        var ups: [Int64: (name: String, description: String, sql: String, bytes: [UInt8])] = [:]
        var downs: [Int64: String] = [:]
        for (name, bytes) in files.sorted(by: { $0.name < $1.name }) where name.hasSuffix(".sql") {
            guard let underscore = name.firstIndex(of: "_"), let version = Int64(name[..<underscore]) else {
                throw PGVaultError(.io, "migration file '\(name)' does not start with '<version>_' (e.g. 20250101000000_create_users.up.sql)")
            }
            let rest = String(name[name.index(after: underscore)...])
            guard let sql = String(validating: bytes, as: UTF8.self) else {
                throw PGVaultError(.io, "migration file '\(name)' is not valid UTF-8")
            }
            if rest.hasSuffix(".down.sql") {
                downs[version] = sql
                continue
            }
            let suffix = rest.hasSuffix(".up.sql") ? ".up.sql" : ".sql"
            let description = String(rest.dropLast(suffix.count)).replacingOccurrences(of: "_", with: " ")
            if ups[version] != nil {
                throw PGVaultError(.io, "two migrations in \(origin) have version \(version); each version must be unique")
            }
            ups[version] = (name, description, sql, bytes)
        }
        return try ups.keys.sorted().map { version in
            let up = ups[version]!
            let digest = try SHA2(.sha384)
            try digest.update(up.bytes)
            return Migration(
                version: version, description: up.description, upSQL: up.sql, downSQL: downs[version],
                checksum: try digest.finalize(), noTransaction: up.sql.hasPrefix("-- no-transaction"),
                fileName: up.name)
        }
    }
}

/// Applies and reverts migrations, recording them in `_sqlx_migrations` the way
/// sqlx does (same table, same columns, same checksum, same advisory lock), so a
/// database migrated by either tool is recognised by the other.
public struct Migrator: Sendable {
    public let migrations: [Migration]
    public static let table = "_sqlx_migrations"

    public init(directory: String) throws {
        migrations = try MigrationSource.load(directory: directory)
    }

    /// The migrations built into pgvault (migrations/ as it was at build time).
    public static func embedded() throws -> Migrator {
        Migrator(migrations: try MigrationSource.embedded())
    }

    public init(migrations: [Migration]) { self.migrations = migrations }

    public struct Applied: Sendable, Equatable {
        public let version: Int64
        public let description: String
        public let success: Bool
        public let checksum: [UInt8]
    }

    /// The rows of `_sqlx_migrations`, or [] when the table does not exist.
    public static func applied(_ conn: PGConnection) throws -> [Applied] {
        let exists = try conn.query("SELECT to_regclass($1) IS NOT NULL", ["public." + table]).scalar == "t"
        guard exists else { return [] }
        return try conn.query(
            "SELECT version, description, success, encode(checksum, 'hex') FROM public.\(SQL.ident(table)) ORDER BY version"
        ).rows.map {
            Applied(
                version: try $0.int64(0), description: try $0.string(1), success: try $0.bool(2),
                checksum: Hex.decode(try $0.string(3)) ?? [])
        }
    }

    /// Applies every pending migration in version order, each in its own
    /// transaction with its bookkeeping row. Returns the ones applied.
    @discardableResult
    public func run(_ conn: PGConnection, progress: (Migration) -> Void = { _ in }) throws -> [Migration] {
        try conn.execute("""
            CREATE TABLE IF NOT EXISTS public.\(SQL.ident(Self.table)) (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
                success BOOLEAN NOT NULL,
                checksum BYTEA NOT NULL,
                execution_time BIGINT NOT NULL
            )
            """)
        return try withLock(conn) {
            let applied = try validate(conn)
            let done = Set(applied.map(\.version))
            var ran: [Migration] = []
            for migration in migrations where !done.contains(migration.version) {
                progress(migration)
                let started = ContinuousClock.now
                let record = {
                    try conn.execute(migration.upSQL)
                    try conn.query(
                        "INSERT INTO public.\(SQL.ident(Self.table)) (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, decode($3, 'hex'), -1)",
                        [String(migration.version), migration.description, Hex.encode(migration.checksum)])
                }
                do {
                    if migration.noTransaction { try record() } else { try conn.transaction { _ in try record() } }
                } catch let error as PGError {
                    throw PGVaultError.server("migration \(migration.fileName) failed and was rolled back", error)
                }
                let elapsed = ContinuousClock.now - started
                let nanos = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
                try conn.query(
                    "UPDATE public.\(SQL.ident(Self.table)) SET execution_time = $1 WHERE version = $2",
                    [String(nanos), String(migration.version)])
                ran.append(migration)
            }
            return ran
        }
    }

    /// Reverts the most recently applied migration with its `.down.sql`.
    /// Returns nil when nothing is applied.
    @discardableResult
    public func revertLast(_ conn: PGConnection) throws -> Migration? {
        try withLock(conn) {
            let applied = try validate(conn)
            guard let last = applied.last else { return nil }
            guard let migration = migrations.first(where: { $0.version == last.version }) else {
                throw PGVaultError(.verification, "the last applied migration, \(last.version) (\(last.description)), is not among these migrations; pass --source DIR with the folder that has it")
            }
            guard let down = migration.downSQL else {
                throw PGVaultError(.archive, "migration \(migration.fileName) has no .down.sql, so it cannot be reverted")
            }
            let revert = {
                try conn.execute(down)
                try conn.query("DELETE FROM public.\(SQL.ident(Self.table)) WHERE version = $1", [String(migration.version)])
            }
            do {
                if migration.noTransaction { try revert() } else { try conn.transaction { _ in try revert() } }
            } catch let error as PGError {
                throw PGVaultError.server("reverting \(migration.fileName) failed and was rolled back", error)
            }
            return migration
        }
    }

    /// Refuses a database that sqlx would refuse: a partially applied migration,
    /// or an applied migration whose file has changed since.
    private func validate(_ conn: PGConnection) throws -> [Applied] {
        let applied = try Self.applied(conn)
        if let dirty = applied.first(where: { !$0.success }) {
            throw PGVaultError(.verification, "migration \(dirty.version) is partially applied (success = false in \(Self.table)); repair the database by hand and delete that row")
        }
        let local = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for row in applied {
            if let file = local[row.version], file.checksum != row.checksum {
                throw PGVaultError(.verification, "migration \(row.version) was applied but \(file.fileName) has changed since (checksum differs); restore the original file")
            }
        }
        return applied
    }

    /// sqlx's per-database advisory lock, so pgvault and sqlx never migrate at once.
    private func withLock<T>(_ conn: PGConnection, _ body: () throws -> T) throws -> T {
        let database = try conn.query("SELECT current_database()").firstRow().string(0)
        let id = String(Self.lockID(database: database))
        try conn.query("SELECT pg_advisory_lock($1::bigint)", [id])
        defer { _ = try? conn.query("SELECT pg_advisory_unlock($1::bigint)", [id]) }
        return try body()
    }

    /// sqlx's `generate_lock_id`: 0x3d32ad9e × CRC-32 (ISO-HDLC) of the database name.
    public static func lockID(database: String) -> Int64 {
        0x3d32_ad9e * Int64(CRC32.checksum(Array(database.utf8)))
    }
}

/// CRC-32 (ISO-HDLC, the zlib polynomial).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
