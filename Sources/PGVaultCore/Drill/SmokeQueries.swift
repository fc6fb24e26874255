import Foundation
import PGClient

/// The queries the chat service cannot do without, run on the restored
/// database (migrations/ and the schema design's section 4): each must
/// return rows, and its plan must reach its table through an index (an
/// index, index-only or bitmap scan), so a restore that lost an index, or
/// left one invalid, fails the drill.
///
/// A freshly restored small database may rightly plan a sequential scan,
/// so the plans are made with `enable_seqscan = off`: the question is
/// whether an index *can* serve the query, which is what the service needs
/// at production size. A schema without the table (not the chat service's)
/// skips the query, and says so.
public struct SmokeQuery: Sendable {
    public var name: String
    /// The table whose index must be used (a partitioned one: any partition's).
    public var table: String
    /// One row of parameters for `query`: the busiest channel, say.
    var pick: String
    var query: String

    public static let chat: [SmokeQuery] = [
        SmokeQuery(
            name: "newest messages of the busiest channel", table: "messages",
            pick: "SELECT channel_id::text FROM messages WHERE deleted_at IS NULL GROUP BY channel_id ORDER BY count(*) DESC, channel_id LIMIT 1",
            query: "SELECT id, author_id, content, created_at FROM messages WHERE channel_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 50"),
        SmokeQuery(
            name: "a user's servers", table: "server_members",
            pick: "SELECT user_id::text FROM server_members GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1",
            query: "SELECT s.id, s.name FROM server_members m JOIN servers s ON s.id = m.server_id WHERE m.user_id = $1"),
        SmokeQuery(
            name: "a member's roles", table: "server_members_roles",
            pick: "SELECT server_id::text, user_id::text FROM server_members_roles ORDER BY server_id, user_id LIMIT 1",
            query: "SELECT r.id, r.name FROM server_members_roles mr JOIN roles r ON r.id = mr.role_id WHERE mr.server_id = $1 AND mr.user_id = $2"),
    ]
}

/// One smoke query's outcome.
public struct SmokeResult: Codable, Sendable, Equatable {
    public var name: String
    /// `passed`, `failed` or `skipped`.
    public var status: String
    public var rows: Int
    /// The index scan found in the plan (`Index Scan using idx on table`), if any.
    public var scan: String?
    public var detail: String
}

extension SmokeQuery {
    /// Runs the query and its EXPLAIN on `conn` (a session of its own:
    /// enable_seqscan is set for it).
    func run(_ conn: PGConnection) throws -> SmokeResult {
        guard try conn.query("SELECT to_regclass($1) IS NOT NULL", [table]).scalar == "t" else {
            return SmokeResult(name: name, status: "skipped", rows: 0, detail: "no table \(table): not the chat service's schema")
        }
        guard let row = try conn.query(pick).rows.first else {
            return SmokeResult(name: name, status: "failed", rows: 0, detail: "\(table) is empty")
        }
        let parameters = row.values
        let rows = try conn.query(query, parameters).rows.count
        let relations = Set(try conn.query(
            // pg_partition_tree lists nothing for a table that is not partitioned.
            """
            SELECT c.relname FROM pg_catalog.pg_class c
            WHERE c.oid = $1::regclass OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1::regclass))
            """, [table]
        ).rows.map { try $0.string(0) })
        let plan = try conn.query("EXPLAIN (FORMAT JSON) " + query, parameters).scalar ?? ""
        var leading: [String: String] = [:]
        for row in try conn.query("""
            SELECT c.relname, a.attname FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
            JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE t.relname = ANY($1::text[])
            """, ["{" + relations.map { "\"\($0)\"" }.joined(separator: ",") + "}"]).rows {
            leading[try row.string(0)] = try row.string(1)
        }
        let scan = Self.indexScan(plan: plan, on: relations) { leading[$0] }
        switch (rows > 0, scan) {
        case (true, let scan?):
            return SmokeResult(name: name, status: "passed", rows: rows, scan: scan, detail: "\(rows) rows; \(scan)")
        case (false, _):
            return SmokeResult(name: name, status: "failed", rows: 0, scan: scan, detail: "returned no rows for \(parameters.compactMap { $0 }.joined(separator: ", "))")
        case (true, nil):
            return SmokeResult(name: name, status: "failed", rows: rows, detail: "its plan reads \(table) without an index: an index is missing or invalid (EXPLAIN: \(Self.nodes(plan: plan).joined(separator: ", ")))")
        }
    }

    static let indexNodes: Set<String> = ["Index Scan", "Index Only Scan", "Bitmap Heap Scan"]

    /// The first index, index-only or bitmap scan of one of `relations` in
    /// an `EXPLAIN (FORMAT JSON)` plan whose index condition constrains the
    /// index's leading column (`leadingColumn` of an index name), described;
    /// nil when there is none, or the plan does not parse. An index read
    /// whole, with a filter or a condition on a later column only, is no
    /// index serving the query: at production size it is a full scan.
    static func indexScan(plan: String, on relations: Set<String>, leadingColumn: (String) -> String?) -> String? {
        var found: String?
        walk(plan: plan) { node in
            guard found == nil, let type = node["Node Type"] as? String, indexNodes.contains(type),
                  let relation = node["Relation Name"] as? String, relations.contains(relation) else { return }
            // A bitmap heap scan's indexes are in its Bitmap Index Scan nodes.
            var probes: [[String: Any]] = []
            if type == "Bitmap Heap Scan" {
                walk(node) { if $0["Node Type"] as? String == "Bitmap Index Scan" { probes.append($0) } }
            } else {
                probes = [node]
            }
            for probe in probes {
                guard let index = probe["Index Name"] as? String, let condition = probe["Index Cond"] as? String,
                      let column = leadingColumn(index), condition.contains("(\(column) ") || condition.contains("(\(SQL.ident(column)) ") else { continue }
                found = "\(type) using \(index) on \(relation)"
                return
            }
        }
        return found
    }

    /// Every node of the plan as `Node Type[ on relation]`, for a failure's message.
    static func nodes(plan: String) -> [String] {
        var out: [String] = []
        walk(plan: plan) { node in
            out.append("\(node["Node Type"] as? String ?? "?")\((node["Relation Name"] as? String).map { " on \($0)" } ?? "")")
        }
        return out
    }

    private static func walk(plan: String, _ visit: ([String: Any]) -> Void) {
        guard let top = try? JSONSerialization.jsonObject(with: Data(plan.utf8)) as? [[String: Any]] else { return }
        top.compactMap { $0["Plan"] as? [String: Any] }.forEach { walk($0, visit) }
    }

    private static func walk(_ root: [String: Any], _ visit: ([String: Any]) -> Void) {
        var stack = [root]
        while let node = stack.popLast() {
            visit(node)
            stack += ((node["Plans"] as? [[String: Any]]) ?? []).reversed()
        }
    }
}
