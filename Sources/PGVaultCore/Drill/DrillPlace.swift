import Foundation
import PGClient

/// Where a drill restores: its own database on the --target server, or on
/// a scratch cluster it started; made ready by ``prepare``, undone by
/// ``teardown(keep:)``.
struct DrillPlace: Sendable {
    var database: String
    /// The drill database's conninfo.
    var conninfo: String
    /// The conninfo of a database to drop it from.
    var adminConninfo: String
    var cluster: ScratchCluster?
    var description: String
    var spaceCheck: String?
    var cleanedUp: [String] = []
    var notes: [String] = []

    static func prepare(_ options: DrillOptions, backup: RepositoryBackup, log: (String) -> Void) throws -> DrillPlace {
        let manifest = backup.manifest
        let name = DrillDatabase.name(backup: backup.name)
        switch options.place {
        case .target(let target):
            let admin = try PGConnection(conninfo: target, applicationName: "pgvault drill")
            let (dropped, notes) = try DrillDatabase.reapOrphans(on: admin)
            dropped.forEach { log("dropped \($0), left by a drill that was killed") }
            let logical = Snapshots.chunkLists(manifest).joined().reduce(Int64(0)) { $0 + Int64($1.rawLength) }
            let space: String
            switch SpaceCheck.run(admin: admin, conninfo: target, logicalBytes: logical, sourceDatabase: manifest.database.name) {
            case .tooLittle(let text): throw PGVaultError.io(text)
            case .enough(let text): space = text
            case .unknown(let text):
                space = text
                log(text)
            }
            try DrillDatabase.create(name, encoding: manifest.database.encoding, on: admin, keep: options.keep)
            return DrillPlace(
                database: name, conninfo: try DrillDatabase.conninfo(target, database: name), adminConninfo: target, cluster: nil,
                description: "server \(ConnInfo.redacted(target)), PostgreSQL \(admin.parameterStatus("server_version") ?? "?")",
                spaceCheck: space, cleanedUp: dropped, notes: notes)
        case .scratch:
            let reaped = ScratchCluster.reapOrphans()
            reaped.forEach { log("removed \($0), the scratch cluster of a drill that was killed") }
            let major = manifest.server.versionNumber / 10000
            log("starting a scratch PostgreSQL \(major) cluster")
            let cluster = try ScratchCluster.start(
                major: major, encoding: manifest.database.encoding, pgBin: options.pgBin, user: options.scratchUser, keep: options.keep)
            do {
                let admin = try PGConnection(conninfo: cluster.conninfo(database: "postgres"), applicationName: "pgvault drill")
                try DrillDatabase.create(name, encoding: manifest.database.encoding, on: admin, keep: options.keep)
            } catch {
                cluster.destroy()
                throw error
            }
            return DrillPlace(
                database: name, conninfo: cluster.conninfo(database: name), adminConninfo: cluster.conninfo(database: "postgres"),
                cluster: cluster, description: "scratch cluster, PostgreSQL \(cluster.version)", spaceCheck: nil, cleanedUp: reaped)
        }
    }

    /// Removes what the drill made; with `keep`, leaves it and says how to
    /// reach it and remove it.
    func teardown(keep: Bool) -> String? {
        if keep {
            if let cluster {
                return "scratch cluster running in \(cluster.folder): psql \"\(conninfo)\"; stop and remove it with: \(cluster.binDir)/pg_ctl -D \(cluster.folder)/data stop && rm -rf \(cluster.folder)"
            }
            return "database \(database): psql \"\(ConnInfo.redacted(conninfo))\"; drop it with DROP DATABASE \(SQL.ident(database))"
        }
        if let cluster {
            cluster.destroy()
        } else if let admin = try? PGConnection(conninfo: adminConninfo, applicationName: "pgvault drill") {
            try? DrillDatabase.drop(database, on: admin)
        }
        return nil
    }
}
