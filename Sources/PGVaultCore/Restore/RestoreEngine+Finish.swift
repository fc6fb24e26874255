import Foundation
import PGClient

extension RestoreEngine {
    struct Finished: Sendable {
        var sequences: Int
        var rowsInDefault: [String: Int64]
        var analyzeTables: [String]
        var notes: [String]
    }
}

extension RestoreEngine.Context {
    /// Sequences, rows in DEFAULT partitions, the end of the journal.
    func finish(plan: LoadPlan) throws -> RestoreEngine.Finished {
        var notes: [String] = []
        var sequences = 0
        for s in manifest.sequences {
            let name = SQL.qualified(s.schema, s.name)
            guard try leader.query("SELECT to_regclass($1) IS NOT NULL", [name]).scalar == "t" else {
                notes.append("sequence \(s.schema).\(s.name) is not in the target; not set")
                continue
            }
            if options.dataOnly {
                // Only forward: a prepared target's sequence never moves back.
                let current = try leader.query("SELECT last_value::text, is_called FROM \(name)").firstRow()
                let have = try current.int64(0) + (current.bool(1) ? 1 : 0)
                guard let last = Int64(s.lastValue) else {
                    throw PGVaultError.archive("manifest.json gives sequence \(s.schema).\(s.name) the value '\(s.lastValue)', which is not a bigint; nothing was set. Use another backup.")
                }
                let want = last + (s.isCalled ? 1 : 0)
                if want <= have { continue }
            }
            try leader.query("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::boolean)", [name, s.lastValue, s.isCalled ? "t" : "f"])
            sequences += 1
        }

        let rowsInDefault = try RestoreJournal.rowsInDefault(leader).filter { $0.value > 0 }
        for (partition, rows) in rowsInDefault.sorted(by: { $0.key < $1.key }) {
            log("\(rows) rows of regular archived partitions were routed into the DEFAULT partition \(partition)")
        }
        let target = try Catalog.relations(leader).map(\.table)
        try RestoreJournal.drop(leader)
        // Looked up by name, not searched: at 10,000 partitions a search per
        // load was 10,050 x 10,053 name comparisons (12.5 s of CPU at the end).
        let byQualifiedName = Dictionary(target.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { first, _ in first })
        let bySchemaAndName = Dictionary(target.map { (BackupEngine.Key($0.schema, $0.name), $0) }, uniquingKeysWith: { first, _ in first })
        var seen = Set<String>()
        let roots = plan.loads.compactMap { l -> String? in
            var t = byQualifiedName[l.destination]
            while let c = t, let ps = c.parentSchema, let pn = c.parentName, let p = bySchemaAndName[BackupEngine.Key(ps, pn)] { t = p }
            guard let root = t, seen.insert(root.qualifiedName).inserted else { return nil }
            return SQL.qualified(root.schema, root.name)
        }
        return RestoreEngine.Finished(sequences: sequences, rowsInDefault: rowsInDefault, analyzeTables: roots, notes: notes)
    }
}
