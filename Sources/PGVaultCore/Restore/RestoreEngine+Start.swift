import Foundation
import PGClient

extension RestoreEngine.Context {
    /// Full restore: the target must be empty (or --clean); then, in one
    /// transaction: the drops, the journal, the pre-data schema.
    func applyPreData(database: String) throws -> [String] {
        guard let schema = manifest.schema else { return [] }
        if !options.clean {
            let (objects, count) = try RestoreTarget.userObjects(leader)
            if count > 0 {
                throw PGVaultError(.server, "database \(database) is not empty: it holds \(count) object(s) (\(objects.joined(separator: ", "))\(count > objects.count ? ", ..." : "")). Restore into an empty database, pass --clean to drop what the archive holds first, or --data-only to load into the existing tables.")
            }
        }
        // The scripts are streamed, one object at a time, twice: first for
        // the preamble, the count and (--clean) what to drop, then to run.
        // At 10,000 partitions the pre-data is tens of thousands of objects.
        func objects(_ member: Manifest.Member, _ body: (SchemaScript.Object, [String]) throws -> Void) throws {
            try SchemaScript.stream(member, from: try options.source.open()) { object, preamble in
                guard let object = SchemaScript.filter(object, noOwner: options.noOwner, noPrivileges: options.noPrivileges) else { return }
                try body(object, preamble)
            }
        }
        var preamble: [String] = [], count = 0
        var preDrops: [SchemaScript.Drop] = [], postDrops: [SchemaScript.Drop] = []
        try objects(schema.preData) { object, given in
            preamble = given
            count += 1
            if options.clean, let drop = SchemaScript.drop(object) { preDrops.append(drop) }
        }
        if options.clean {
            // Unfiltered, as the objects were created.
            try SchemaScript.stream(schema.postData, from: try options.source.open()) { object, _ in
                if let drop = SchemaScript.drop(object) { postDrops.append(drop) }
            }
        }
        let drops = SchemaScript.ordered(postDrops) + SchemaScript.ordered(preDrops)
        try Session.runPreamble(leader, preamble)
        log("applying the pre-data schema (\(count) objects)\(drops.isEmpty ? "" : " after dropping \(drops.count) objects the archive holds")")
        try leader.transaction { conn in
            for d in drops {
                do {
                    try conn.execute(d.sql)
                } catch let error as PGError where error.sqlState == PGError.dependentObjectsStillExist {
                    // Part of an object the archive does not hold (an identity
                    // sequence of another table, an extension's function...).
                    throw PGVaultError.server("--clean cannot drop \(d.object) in database \(database): \(error); it belongs to an object the archive does not hold, and --clean drops only what the archive holds. Nothing was changed. Drop or rename that object yourself, or restore into an empty database.", error)
                }
            }
            try RestoreJournal.create(conn, state: .init(archiveID: archiveID, archive: options.archiveName, fingerprint: options.fingerprint, startedAt: ""))
            try objects(schema.preData) { object, _ in
                do {
                    try conn.execute(SchemaScript.sql(of: object))
                } catch let error as PGError {
                    throw PGVaultError.server("the pre-data schema failed at \(object.type) \(object.schema.map { "\($0)." } ?? "")\(object.name): \(error). Nothing was changed.", error)
                }
            }
            try RestoreJournal.recordStep(conn, "pre-data")
        }
        return drops.map(\.object)
    }

    /// Data-only: refuse tables that hold rows (unless --clean), then in one
    /// transaction create the journal, detach foreign keys and triggers,
    /// and (--clean) empty the destinations.
    func startDataOnly(plan: LoadPlan, created: [String]) throws {
        var seen = Set<String>()
        let destinations = plan.loads.compactMap { l -> (String, String)? in
            seen.insert(l.destination).inserted ? (l.schema, l.name) : nil
        }
        if !options.clean {
            let full = try RestoreTarget.nonEmpty(leader, destinations)
            if !full.isEmpty {
                throw PGVaultError(.server, "\(full.count) target table(s) already hold rows (\(full.prefix(8).joined(separator: ", "))\(full.count > 8 ? ", ..." : "")); loading would duplicate them. Pass --clean to empty them first, or narrow the restore with --table/--exclude-table.")
            }
        }
        let detach = destinations.isEmpty ? [] : try RestoreTarget.detachable(leader, destinations: destinations)
        try leader.transaction { conn in
            try RestoreJournal.create(conn, state: .init(archiveID: archiveID, archive: options.archiveName, fingerprint: options.fingerprint, startedAt: ""))
            for c in created { try RestoreJournal.recordStep(conn, "created:\(c)") }
            for d in detach {
                try RestoreJournal.recordDetached(conn, d)
                try conn.execute(d.detachSQL)
            }
            if options.clean && !destinations.isEmpty {
                try conn.execute("TRUNCATE " + destinations.map { SQL.qualified($0.0, $0.1) }.joined(separator: ", "))
            }
        }
        let fks = detach.filter { $0.kind == .foreignKey }.count
        log("detached \(fks) foreign keys and disabled \(detach.count - fks) triggers for the load (journaled; put back at the end)")
        if options.clean { log("emptied \(destinations.count) target tables (--clean)") }
    }
}
