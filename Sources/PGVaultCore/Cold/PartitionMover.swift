import Foundation
import PGClient

/// `archive-partitions --attach-to TABLE`: the design's archive table
/// (section 9.1 of the schema document, `messages_archive`). Each selected
/// partition, oldest first, moves in ONE transaction: lock the source parent,
/// the target parent and the partition; check it is still attached with the
/// same bounds and that no row of another table references it; DETACH it
/// from the source and ATTACH it to the target with the same bounds; COMMIT.
/// Nothing is written outside the database, so no repository is needed. Any
/// failure before the COMMIT leaves the partition where it was.
///
/// Rows of other tables that reference the partition are refused, never
/// moved: `message_reactions` and `attachments` reference `messages`, and a
/// partition of `messages_archive` cannot satisfy those foreign keys. Remove
/// them first, or archive the partition to cold storage directly
/// (`--referencing-rows archive` without `--attach-to`), which keeps them.
enum PartitionMover {
    /// Checks `target` against the plan's source tables and marks the items
    /// whose bounds overlap a partition the target already has.
    static func check(_ conn: PGConnection, target name: String, plan: inout PartitionArchiver.Plan) throws -> ColdCatalog.Parent {
        let target = try ColdCatalog.parent(conn, name, relations: try Catalog.relations(conn))
        for index in plan.items.indices {
            let item = plan.items[index]
            if item.parent.oid == target.oid {
                throw PGVaultError.usage("--attach-to \(name) is the table the partitions are taken from (\(item.parent.qualified)); name the archive table, e.g. --attach-to messages_archive")
            }
            guard item.parent.keyColumn == target.keyColumn, item.parent.keyType == target.keyType else {
                throw PGVaultError.usage("--attach-to \(target.qualified) is partitioned by \(target.keyColumn) (\(target.keyType)), \(item.parent.qualified) by \(item.parent.keyColumn) (\(item.parent.keyType)); a partition moves only between tables partitioned by the same key")
            }
            plan.items[index].result.archive = nil
            guard item.result.action != "refused", let from = item.partition.table.bound?.rangeFrom?.first,
                  let to = item.partition.table.bound?.rangeTo?.first else { continue }
            for other in target.partitions {
                guard let bound = other.table.bound, !bound.isDefault,
                      let otherFrom = bound.rangeFrom?.first, let otherTo = bound.rangeTo?.first else { continue }
                let overlaps = try conn.query(
                    "SELECT $1::timestamptz < $4::timestamptz AND $3::timestamptz < $2::timestamptz",
                    [ColdCatalog.boundValue(from), ColdCatalog.boundValue(to), ColdCatalog.boundValue(otherFrom), ColdCatalog.boundValue(otherTo)]
                ).scalar == "t"
                if overlaps {
                    plan.items[index].result.action = "refused"
                    plan.items[index].result.reason = "its range [\(from), \(to)) overlaps \(other.table.qualifiedName) [\(otherFrom), \(otherTo)) of \(target.qualified); move or drop that partition first"
                    break
                }
            }
        }
        return target
    }

    /// Moves one partition; returns its result with the rows it holds.
    static func move(
        _ item: PartitionArchiver.Item, to target: ColdCatalog.Parent, conn: PGConnection, options: ColdArchiveOptions
    ) throws -> ColdPartitionResult {
        let p = item.partition.table
        let partitionSQL = SQL.qualified(p.schema, p.name)
        guard let bound = p.bound?.expression else {
            throw PGVaultError(.server, "\(p.qualifiedName) has no partition bound in the catalog; nothing was moved")
        }
        var result = item.result
        try conn.execute("BEGIN")
        do {
            try conn.execute("SET LOCAL lock_timeout = \(SQL.literal(options.lockWaitTimeout))")
            // Parents before the partition, as queries through them lock: no lock-order deadlock.
            try PartitionArchiver.lockOrExplain(conn, "LOCK TABLE ONLY \(item.parent.sql) IN ACCESS EXCLUSIVE MODE", item.parent.qualified, options.lockWaitTimeout)
            try PartitionArchiver.lockOrExplain(conn, "LOCK TABLE ONLY \(target.sql) IN SHARE UPDATE EXCLUSIVE MODE", target.qualified, options.lockWaitTimeout)
            try PartitionArchiver.lockOrExplain(conn, "LOCK TABLE ONLY \(partitionSQL) IN ACCESS EXCLUSIVE MODE", p.qualifiedName, options.lockWaitTimeout)
            try PartitionArchiver.checkStillAttached(conn, item)
            // Rows may have come since the plan counted them: count again under the locks.
            var referencing: [String] = []
            for g in ColdCatalog.grouped(item.references) {
                let cond = ColdCatalog.referencingCondition(g.refs, alias: "r", partition: partitionSQL)
                let n = try conn.query("SELECT count(*) FROM \(SQL.qualified(g.schema, g.table)) r WHERE \(cond)").firstRow().int64(0)
                if n > 0 { referencing.append("\(n) rows of \(g.schema).\(g.table)") }
            }
            if !referencing.isEmpty {
                throw PGVaultError(.server, "\(referencing.joined(separator: ", ")) reference \(p.qualifiedName) now; a partition of \(target.qualified) cannot satisfy their foreign keys to \(item.parent.qualified). Nothing was moved; remove them first, or archive the partition to cold storage with --referencing-rows archive (without --attach-to)")
            }
            result.rows = try conn.query("SELECT count(*) FROM ONLY \(partitionSQL)").firstRow().int64(0)
            try options.faultInjection?("before-detach")
            try conn.execute("ALTER TABLE \(item.parent.sql) DETACH PARTITION \(partitionSQL)")
            do {
                try conn.execute("ALTER TABLE \(target.sql) ATTACH PARTITION \(partitionSQL) \(bound)")
            } catch let error as PGError {
                throw PGVaultError.server("attaching \(p.qualifiedName) to \(target.qualified) \(bound) failed; nothing was moved. The two tables must have the same columns (LIKE \(item.parent.qualified) INCLUDING ALL makes such a table)", error)
            }
            try options.faultInjection?("before-commit")
        } catch {
            if conn.isHealthy { try? conn.execute("ROLLBACK") }
            throw error
        }
        try PartitionArchiver.commit(
            conn, what: "the move of \(p.qualifiedName) to \(target.qualified)",
            unknown: "Look which table it is a partition of now (\\d+ \(target.qualified)); no row was changed either way.")
        result.action = "attached"
        result.attachedTo = target.qualified
        return result
    }
}
