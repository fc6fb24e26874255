import PGClient

/// The default verification of a restore (`--verify standard`): what the
/// load itself proved, collected before the journal is dropped, without
/// reading a table back.
/// - Every unit's COPY reported exactly the manifest's row count (checked in
///   the unit's transaction; the journal holds only units that passed), and
///   its member streamed whole with its SHA-256 (and, from a repository, each
///   chunk's id) equal to the manifest's, else the unit rolled back.
/// - Every primary key, unique and exclusion constraint, and every foreign
///   key, was created validated: PostgreSQL checked every row then. A foreign
///   key left NOT VALID (rows reference rows the selection left out) is a
///   failure, unless the archive's own schema has it NOT VALID.
/// - No index is invalid (a partitioned index lacking an attachment is).
/// It does not compare the tables' contents with the archive after the load:
/// a trigger or rule that changed rows during COPY, or a change made to the
/// target by someone else since, is not seen. `--verify full` reads every
/// table back and compares its digest.
enum RestoreProof {
    struct Outcome: Sendable {
        var failures: [String]
        var summary: String
    }

    /// `notValidInArchive`: `schema table constraint` of the foreign keys the
    /// archive's post-data adds NOT VALID.
    static func standard(_ conn: PGConnection, plan: LoadPlan, notValidInArchive: Set<String>) throws -> Outcome {
        var failures: [String] = []
        let journaled = try RestoreJournal.finishedUnits(conn)
        var rows: Int64 = 0
        for load in plan.loads {
            guard let n = journaled[load.unit.id] else {
                failures.append("unit \(load.unit.id) of \(load.archived.qualifiedName): not loaded")
                continue
            }
            if n != load.unit.rows {
                failures.append("unit \(load.unit.id) of \(load.archived.qualifiedName): COPY loaded \(n) rows, the manifest says \(load.unit.rows)")
            }
            rows += n
        }
        let constraints = try conn.query("""
            SELECT n.nspname, c.relname, con.conname, con.contype::text, con.convalidated
            FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE con.contype IN ('p', 'u', 'x', 'f') AND con.conparentid = 0 AND n.nspname <> $1
            """, [RestoreJournal.schema]).rows
        var keys = 0, foreignKeys = 0
        for r in constraints {
            let (schema, table, name, type) = (try r.string(0), try r.string(1), try r.string(2), try r.string(3))
            guard type == "f" else { keys += 1; continue }
            if try r.bool(4) {
                foreignKeys += 1
            } else if !notValidInArchive.contains("\(schema) \(table) \(name)") {
                failures.append("foreign key \(name) on \(schema).\(table) is NOT VALID: some rows reference rows that were not restored")
            }
        }
        for r in try conn.query("""
            SELECT n.nspname, c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT i.indisvalid AND n.nspname <> $1
            """, [RestoreJournal.schema]).rows {
            failures.append("index \(try r.string(0)).\(try r.string(1)) is invalid")
        }
        let summary = failures.isEmpty
            ? "OK (standard): \(plan.loads.count) units, \(rows) rows, each COPY's row count and the archive's checksums matched as it loaded; \(keys) keys and \(foreignKeys) foreign keys validated by PostgreSQL"
            : "FAILED (standard): \(failures.count) findings"
        return Outcome(failures: failures, summary: summary)
    }

    /// A foreign key the script itself adds NOT VALID.
    static func addsNotValid(_ object: SchemaScript.Object) -> Bool {
        SchemaScript.Phase.of(object) == .foreignKeys && object.sql.hasSuffix(" NOT VALID;")
    }
}
