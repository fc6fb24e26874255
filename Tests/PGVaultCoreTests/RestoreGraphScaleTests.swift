import Foundation
@testable import PGVaultCore
import Support
import Testing

/// The restore's graph at many partitions, without a server: a post-data
/// script made as pg_dump makes one for `messages` in N daily partitions
/// (a primary key and six indexes on the parent and on each partition, and
/// the attachment of each partition's seven), streamed into the script's
/// facts, then the graph and the ready queue.
@Suite("restore: the graph at many partitions")
struct RestoreGraphScaleTests {
    static let indexes = ["author", "channel", "content", "guild", "reply", "thread"]

    /// The script's objects, one at a time, in pg_dump's order of kinds.
    static func objects(partitions: Int, _ body: (SchemaScript.Object) throws -> Void) rethrows {
        var index = 0
        func object(_ type: String, _ name: String, _ sql: String) throws {
            try body(SchemaScript.Object(index: index, name: name, type: type, schema: "public", sql: sql, tablespace: "''", accessMethod: nil))
            index += 1
        }
        func partition(_ p: Int) -> String { "messages_p\(p)" }
        try object("CONSTRAINT", "users users_pkey", "ALTER TABLE ONLY public.users\n    ADD CONSTRAINT users_pkey PRIMARY KEY (id);")
        try object("CONSTRAINT", "messages messages_pkey", "ALTER TABLE ONLY public.messages\n    ADD CONSTRAINT messages_pkey PRIMARY KEY (id, created_at);")
        for p in 0..<partitions {
            try object("CONSTRAINT", "\(partition(p)) \(partition(p))_pkey",
                       "ALTER TABLE ONLY public.\(partition(p))\n    ADD CONSTRAINT \(partition(p))_pkey PRIMARY KEY (id, created_at);")
        }
        for i in indexes {
            try object("INDEX", "messages_\(i)_idx", "CREATE INDEX messages_\(i)_idx ON ONLY public.messages USING btree (\(i)_id, created_at);")
            for p in 0..<partitions {
                try object("INDEX", "\(partition(p))_\(i)_idx",
                           "CREATE INDEX \(partition(p))_\(i)_idx ON public.\(partition(p)) USING btree (\(i)_id, created_at);")
            }
        }
        for p in 0..<partitions {
            try object("INDEX ATTACH", "\(partition(p))_pkey", "ALTER INDEX public.messages_pkey ATTACH PARTITION public.\(partition(p))_pkey;")
            for i in indexes {
                try object("INDEX ATTACH", "\(partition(p))_\(i)_idx",
                           "ALTER INDEX public.messages_\(i)_idx ATTACH PARTITION public.\(partition(p))_\(i)_idx;")
            }
        }
        try object("FK CONSTRAINT", "messages messages_author_fk",
                   "ALTER TABLE public.messages\n    ADD CONSTRAINT messages_author_fk FOREIGN KEY (author_id) REFERENCES public.users(id);")
        try object("FK CONSTRAINT", "reactions reactions_message_fk",
                   "ALTER TABLE ONLY public.reactions\n    ADD CONSTRAINT reactions_message_fk FOREIGN KEY (message_id, created_at) REFERENCES public.messages(id, created_at);")
    }

    /// The manifest's tables and one unit for each table that holds rows.
    static func loads(partitions: Int) -> (tables: [Manifest.Table], loads: [LoadPlan.Load]) {
        let columns = [Manifest.Column(name: "id", type: "bigint", notNull: true, generated: false)]
        func table(_ name: String, kind: String, parent: String? = nil) -> Manifest.Table {
            Manifest.Table(
                schema: "public", name: name, kind: kind, columns: columns, partitioning: nil,
                parentSchema: parent.map { _ in "public" }, parentName: parent, bound: nil, keyColumns: ["id"], rows: 1)
        }
        let tables = [table("users", kind: "table"), table("messages", kind: "partitioned"), table("reactions", kind: "table")]
            + (0..<partitions).map { table("messages_p\($0)", kind: "partition", parent: "messages") }
        let loads = tables.filter { $0.kind != "partitioned" }.enumerated().map { n, t in
            LoadPlan.Load(
                unit: Manifest.Unit(
                    id: "u\(n)", schema: t.schema, table: t.name, member: "data/u\(n).copy.zst", columns: ["id"],
                    fromPage: nil, toPage: nil, rows: 1, rawBytes: t.name == "reactions" ? 1_000_000 : Int64(1_000 + n), compressedBytes: 100, sha256: "", rowDigest: ""),
                archived: t, schema: t.schema, name: t.name, routed: false, freeze: true)
        }
        return (tables, loads)
    }

    /// A field of /proc/self/status, in KiB.
    static func status(_ key: String) -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    @Test("10,000 partitions: a foreign key waits for the referenced keys' attachments only, the partitions' index names are not kept, and what each part holds is reported")
    func tenThousand() throws {
        let partitions = 10_000
        let (tables, loads) = Self.loads(partitions: partitions)
        Heap.releaseFreePages()
        let before = Heap.bytesInUse()
        let writer = try SpooledObject.Writer()
        var script = PostDataScript()
        try Self.objects(partitions: partitions) { script.add($0, spooled: try writer.append($0)) }
        script.seal(try writer.finish())
        let objects = script.entries.count
        #expect(objects == 2 + partitions * 14 + 6 + 2)
        let facts = Heap.bytesInUse() - before

        let rssBefore = Self.status("VmRSS")
        // Resets VmHWM to the RSS now (Linux: clear_refs 5).
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        var graph = RestoreGraph.build(loads: loads, tables: tables, script: &script, finishedUnits: [:], finishedSteps: [])
        let peak = Heap.bytesInUse() - before
        let rssDuring = Self.status("VmHWM") - rssBefore, rssAfter = Self.status("VmRSS") - rssBefore
        script.dropFacts()
        Heap.releaseFreePages()
        let graphBytes = Heap.bytesInUse() - before
        let queue = ReadyQueue(graph)
        let queueBytes = Heap.bytesInUse() - before - graphBytes
        // Measured, not asserted (the benchmark harness owns memory goals):
        // read by hand in the test's output, from a run of this suite alone
        // (the heap is the process's: tests beside it change the figures).
        print("restore graph at \(partitions) partitions: \(objects) objects, \(graph.steps.count) steps; "
              + "script facts \(facts / objects) B/object, graph \(graphBytes / graph.steps.count) B/step, "
              + "ready queue \(queueBytes / graph.steps.count) B/step; script and graph together \(peak / graph.steps.count) B/step; "
              + "the build raised RSS by \(rssAfter) KiB (\(rssDuring) KiB at its high-water mark)")

        // Tables (the parent, its partitions, users, reactions) and the
        // seven parent indexes are named; the 70,000 partitions' indexes not.
        #expect(graph.names.count == tables.count + 1 + Self.indexes.count)
        let base = loads.count
        let kinds = graph.steps.map(\.kind)
        let fk = try #require(kinds.indices.last)
        #expect(kinds[fk] == .fk && graph.relation(of: fk) == "public.reactions")
        let attachments = kinds.indices.filter { kinds[$0] == .attach }
        #expect(attachments.count == partitions * 7)
        // The primary key's attachments come first for each partition.
        let keyAttachments = Set(attachments.enumerated().filter { $0.offset % 7 == 0 }.map { Int32($0.element) })
        let waits = Set(graph.deps(of: fk))
        #expect(keyAttachments.isSubset(of: waits))
        #expect(waits.intersection(attachments.map(Int32.init)).count == partitions)
        // Every load of both trees, and the keys: users' is not its tree.
        #expect(waits.filter { $0 < base }.count == partitions + 1)
        for a in attachments.prefix(7) { #expect(graph.deps(of: a).count == 2 && graph.locks(of: a).count == 3) }
        // The parent's key and indexes, ON ONLY it, wait for no partition's
        // load (none goes through the parent); a partition's key for its own.
        let parentKey = base + 1, parentIndexes = kinds.indices.filter { kinds[$0] == .index && graph.relation(of: $0) == "public.messages" }
        #expect(kinds[parentKey] == .key && graph.relation(of: parentKey) == "public.messages" && graph.deps(of: parentKey).isEmpty)
        #expect(parentIndexes.count == Self.indexes.count && parentIndexes.allSatisfy { graph.deps(of: $0).isEmpty })
        #expect(graph.relation(of: base + 2) == "public.messages_p0" && graph.deps(of: base + 2).count == 1)
        // The attachments the foreign key waits for go before the others, as large as it.
        let fkSize = graph.steps[fk].size
        #expect(keyAttachments.allSatisfy { graph.steps[Int($0)].size == fkSize })
        #expect(attachments.filter { !keyAttachments.contains(Int32($0)) }.allSatisfy { graph.steps[$0].size == 0 })
        #expect(graph.locks(of: fk).count == partitions + 2)
        // The queue gives the loads first, largest first.
        #expect(queue.tryNext() != nil)
        graph = RestoreGraph()
    }
}
