import PGClient

extension RestoreEngine {
    /// A restore goes into the source's major or a newer one, never an older
    /// one. pg_dump's schema SQL is written for the source server (and at least
    /// its major: pg_dump 18 for an 18 server) and PostgreSQL promises only
    /// that it loads into the same or a newer major; binary COPY data carries
    /// the same promise. An older target could fail halfway through the schema,
    /// or load with a subtly different meaning, so it is refused before the
    /// target changes.
    static func checkMajor(archive: String, source: Manifest.Server, targetVersion: String, targetNumber: Int) throws {
        let sourceMajor = source.versionNumber / 10000, targetMajor = targetNumber / 10000
        guard targetMajor < sourceMajor else { return }
        throw PGVaultError(.server, """
            \(archive) was taken from PostgreSQL \(source.version) but the target server runs PostgreSQL \
            \(targetVersion): a restore into an older major is not supported (pg_dump's schema and the data \
            load only into the same or a newer major); nothing was changed. Restore into a server of \
            PostgreSQL \(sourceMajor) or newer.
            """)
    }
}
