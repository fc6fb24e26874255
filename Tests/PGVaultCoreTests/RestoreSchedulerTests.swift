import CryptoDigest
import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The full restore's steps run by dependencies: the timeline they leave,
/// the bound computed from it, and --resume after a kill in the post-data.
@Suite("restore: scheduled by dependencies", .serialized)
struct RestoreSchedulerTests {
    @Test("names as pg_dump writes them read back into their parts")
    func qualifiedNames() {
        #expect(QualifiedName.parse("public.users") == QualifiedName(schema: "public", name: "users"))
        #expect(QualifiedName.parse("\"Ops\".\"Job \"\"Runs\"\"\"") == QualifiedName(schema: "Ops", name: "Job \"Runs\""))
        #expect(QualifiedName.parse("users") == nil)
        #expect(QualifiedName.parse("public.users extra") == nil)
        let attach = QualifiedName.attachment("ALTER INDEX public.messages_pkey ATTACH PARTITION \"P\".\"m 1_pkey\";")
        #expect(attach?.0 == QualifiedName(schema: "public", name: "messages_pkey"))
        #expect(attach?.1 == QualifiedName(schema: "P", name: "m 1_pkey"))
        #expect(QualifiedName.referenced("ALTER TABLE ONLY public.a\n    ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES public.\"B\"(id);")
                == QualifiedName(schema: "public", name: "B"))
    }

    @Test("the graph's lock modes conflict as PostgreSQL's do")
    func lockModes() {
        typealias M = RestoreGraph.LockMode
        // PostgreSQL's table (lock.c, LockConflicts), for the modes the restore takes.
        let table: [M: Set<M>] = [
            .accessShare: [.accessExclusive],
            .shareUpdateExclusive: [.shareUpdateExclusive, .share, .shareRowExclusive, .accessExclusive],
            .share: [.shareUpdateExclusive, .shareRowExclusive, .accessExclusive],
            .shareRowExclusive: [.shareUpdateExclusive, .share, .shareRowExclusive, .accessExclusive],
            .accessExclusive: Set(M.allCases),
        ]
        for a in M.allCases {
            for b in M.allCases {
                #expect(a.conflicts(with: b) == table[a]!.contains(b), "\(a) against \(b)")
                #expect(a.conflicts(with: b) == b.conflicts(with: a))
            }
        }
    }

    @Test("--timeline writes one valid JSON line per step whose dependencies finish first, and the bound is below the wall time",
          arguments: TestServers.versions)
    func timeline(major: Int) async throws {
        let fixture = try await RestoreFixtures.source(major)
        let (targetDB, _) = try RestoreFixtures.emptyTarget(fixture)
        let path = try TestScratch.path("timeline") + ".jsonl"
        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        options.jobs = 3
        options.analyze = true
        options.timeline = path
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")

        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        var entries: [String: [String: Any]] = [:]
        var order: [String] = []
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["id", "kind", "relation", "deps", "start", "end", "worker", "bytes", "locks"], "\(line)")
            let id = try #require(object["id"] as? String)
            #expect(entries[id] == nil, "duplicate id \(id)")
            entries[id] = object
            order.append(id)
        }
        func kind(_ id: String) -> String { entries[id]?["kind"] as? String ?? "" }
        func start(_ id: String) -> Double { entries[id]?["start"] as? Double ?? -1 }
        func end(_ id: String) -> Double { entries[id]?["end"] as? Double ?? .infinity }
        func deps(_ id: String) -> [String] { entries[id]?["deps"] as? [String] ?? [] }
        func relation(_ id: String) -> String? { entries[id]?["relation"] as? String }
        let kinds = Set(order.map(kind))
        #expect(kinds.isSubset(of: ["schema", "load", "key", "index", "attach", "fk", "other", "sequence", "statistics", "verify", "analyze"]))
        #expect(kinds.isSuperset(of: ["schema", "load", "key", "index", "attach", "fk", "other", "sequence", "verify", "analyze"]))
        #expect(order.filter { kind($0) == "load" }.count == fixture.manifest.units.count)
        // ANALYZE runs once on each loaded tree's root, never on a partition.
        let analyzed = order.filter { kind($0) == "analyze" }.compactMap(relation)
        let partitions = Set(fixture.manifest.tables.filter { $0.parentName != nil }.map { SQL.qualified($0.schema, $0.name) })
        #expect(Set(analyzed).count == analyzed.count && analyzed.contains(SQL.qualified("public", "messages")), "\(analyzed)")
        #expect(partitions.isDisjoint(with: analyzed) && !partitions.isEmpty, "\(analyzed)")
        for id in order {
            #expect(start(id) <= end(id), "\(id)")
            for d in deps(id) {
                #expect(entries[d] != nil, "\(id) depends on \(d), which is not in the timeline")
                #expect(end(d) <= start(id), "\(id) started at \(start(id)) before \(d) ended at \(end(id))")
            }
            if kind(id) == "load" { #expect((entries[id]?["bytes"] as? Int ?? 0) > 0 && (entries[id]?["worker"] as? Int ?? 0) > 0) }
        }
        // The dependency rules: a table's keys and indexes after its loads,
        // an attachment after its two indexes, a foreign key after both tables' keys.
        var loadsOf: [String: Set<String>] = [:]
        for id in order where kind(id) == "load" { loadsOf[relation(id) ?? "", default: []].insert(id) }
        for id in order where kind(id) == "key" || kind(id) == "index" {
            #expect(Set(deps(id)).isSuperset(of: loadsOf[relation(id) ?? ""] ?? []), "\(id)")
        }
        for id in order where kind(id) == "attach" {
            #expect(deps(id).count == 2 && deps(id).allSatisfy { ["key", "index"].contains(kind($0)) }, "\(id): \(deps(id))")
        }
        let pkey = try #require(order.first { $0 == "key:public.messages_2025_01 messages_2025_01_pkey" })
        let fk = try #require(order.first { kind($0) == "fk" && relation($0) == "public.message_reactions" })
        #expect(start(fk) >= end(pkey) || !deps(fk).isEmpty)
        // It waits for the attachments of messages' primary key (the index
        // that backs it), not for those of messages' other indexes (none of
        // them unique), which can run beside it.
        let attachments = order.filter { kind($0) == "attach" && relation(deps($0)[0]) == "public.messages" }
        let keyAttachments = attachments.filter { kind(deps($0)[0]) == "key" }
        let otherAttachments = attachments.filter { kind(deps($0)[0]) == "index" }
        #expect(!keyAttachments.isEmpty && !otherAttachments.isEmpty)
        #expect(Set(deps(fk)).isSuperset(of: keyAttachments), "\(deps(fk))")
        #expect(Set(deps(fk)).isDisjoint(with: otherAttachments), "\(deps(fk))")
        let lastNonOther = order.filter { ["load", "key", "index", "attach", "fk"].contains(kind($0)) }.map(end).max() ?? 0
        #expect(order.filter { kind($0) == "other" }.allSatisfy { start($0) >= lastNonOther })
        // Not phases: some table's keys or indexes start while other units still load.
        let lastLoad = order.filter { kind($0) == "load" }.map(end).max() ?? 0
        #expect(order.contains { ["key", "index"].contains(kind($0)) && start($0) < lastLoad })

        // No two steps whose locks on a relation conflict ran at once.
        let modes = Dictionary(uniqueKeysWithValues: RestoreGraph.LockMode.allCases.map { ($0.name, $0) })
        var held: [String: [(id: String, mode: RestoreGraph.LockMode)]] = [:]
        for id in order {
            for lock in entries[id]?["locks"] as? [String] ?? [] {
                let parts = lock.split(separator: " ", maxSplits: 1).map(String.init)
                let mode = try #require(parts.count == 2 ? modes[parts[0]] : nil, "\(id): lock \(lock)")
                held[parts[1], default: []].append((id, mode))
            }
        }
        #expect(held["public.messages"]?.contains { $0.mode == .shareRowExclusive } == true, "\(held["public.messages"] ?? [])")
        for (relation, steps) in held {
            for (i, a) in steps.enumerated() {
                for b in steps[(i + 1)...] where a.mode.conflicts(with: b.mode) && a.id != b.id {
                    #expect(end(a.id) <= start(b.id) || end(b.id) <= start(a.id), "\(a.id) and \(b.id) overlapped with conflicting locks on \(relation)")
                }
            }
        }

        let wall = try #require(summary.scheduledSeconds)
        let bound = try #require(summary.bound)
        #expect(bound.jobs == 3 && bound.criticalPathSeconds > 0 && bound.statementSeconds > 0)
        #expect(bound.lowerBoundSeconds <= wall + 0.001, "bound \(bound) above the wall time \(wall)")
        #expect(bound.lockSeconds <= wall + 0.001 && bound.lockRelation != nil, "\(bound)")
    }

    @Test("the timeline is written as it goes under a temporary name: renamed into place by finish, gone if the restore fails before")
    func timelineFile() throws {
        let folder = try TestScratch.Folder("timeline-file")
        defer { folder.remove() }
        let entry = RestoreTimeline.Entry(id: "schema", kind: "schema", relation: nil, deps: [], start: 0, end: 1, worker: 0, bytes: 0)
        do {
            let abandoned = try RestoreTimeline(path: folder["failed.jsonl"])
            try abandoned.append(entry)
            try abandoned.flushIfLarge()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
        let timeline = try RestoreTimeline(path: folder["done.jsonl"])
        for _ in 0..<3 { try timeline.append(entry) }
        #expect(!FileManager.default.fileExists(atPath: folder["done.jsonl"]))
        try timeline.finish()
        let lines = try String(contentsOfFile: folder["done.jsonl"], encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3 && timeline.count == 3)
        let decoded = try JSONDecoder().decode(RestoreTimeline.Entry.self, from: Data(lines[0].utf8))
        #expect(decoded == entry)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["done.jsonl"])
    }

    @Test("the lower bound counts steps whose locks on one relation conflict as one after another")
    func lockBound() {
        typealias L = RestoreTimeline.BoundLock
        // 0: a load (2 s); 1 and 2: two foreign keys on relation 7 (10 s
        // each, SHARE ROW EXCLUSIVE), both after the load; 3: an index build
        // on 7 (SHARE, 4 s) after the load; 4: a step after both keys (1 s).
        let durations = [2.0, 10, 10, 4, 1]
        let deps: [[Int]] = [[], [0], [0], [0], [1, 2]]
        let locks: [[L]] = [[], [L(relation: 7, serial: true)], [L(relation: 7, serial: true)], [L(relation: 7, serial: false)], []]
        let bound = RestoreTimeline.bound(
            durations: durations, deps: { deps[$0] }, locks: { locks[$0] }, relationName: { "r\($0)" }, jobs: 4)
        // The path to the last step: the load, both keys (one after the
        // other: it waits for both), itself; 27 s of statements over 4 connections.
        #expect(bound.criticalPathSeconds == 2 + 10 + 10 + 1 && bound.statementSeconds == 27)
        // The keys and the build cannot overlap: none starts before 2 s, they
        // take 10 + 10 + 4 s one after another, and the build, which nothing
        // waits for, may be the last (without it: 2 + 20 + the last step's 1).
        #expect(bound.lockRelation == "r7")
        #expect(bound.lockSeconds == 2 + 10 + 10 + 4)
        #expect(bound.lowerBoundSeconds == 26)
        // SHARE beside SHARE does not conflict: two builds alone give no lock chain.
        let builds = RestoreTimeline.bound(
            durations: [5, 5], deps: { _ in [] }, locks: { _ in [L(relation: 1, serial: false)] }, jobs: 2)
        #expect(builds.lockSeconds == 0 && builds.lockRelation == nil && builds.lowerBoundSeconds == 5)
        // Three attachments to one parent index (1 s each, SHARE UPDATE
        // EXCLUSIVE on it) and a foreign key (2 s) that waits for all three:
        // the key cannot start before 3 s, so the path is 5 s, not 1 + 2.
        let attached = RestoreTimeline.bound(
            durations: [1, 1, 1, 2], deps: { $0 == 3 ? [0, 1, 2] : [] }, locks: { $0 < 3 ? [L(relation: 9, serial: true)] : [] },
            relationName: { "r\($0)" }, jobs: 8)
        #expect(attached.criticalPathSeconds == 5 && attached.lowerBoundSeconds == 5)
        #expect(attached.lockSeconds == 1 + 1 + 1 + 2 && attached.lockRelation == "r9")
        // A partitioned table's shape: two foreign keys (10 s each) lock the
        // parent 1 and its partitions 2 and 3 SHARE ROW EXCLUSIVE; the
        // parent's own key (1 s) locks 1 alone, ACCESS EXCLUSIVE; two index
        // builds (4 s each) lock a partition each, SHARE. Every one of the
        // three conflicts with both keys, so they go before or after them:
        // 20 s, then 9 s over 2 connections, at least 4.5 s. (Per relation
        // alone: 20 + the longest build, 24 s.)
        let tree: [[L]] = [
            [1, 2, 3].map { L(relation: $0, serial: true) }, [1, 2, 3].map { L(relation: $0, serial: true) },
            [L(relation: 1, serial: true)], [L(relation: 2, serial: false)], [L(relation: 3, serial: false)],
        ]
        let partitioned = RestoreTimeline.bound(
            durations: [10, 10, 1, 4, 4], deps: { _ in [] }, locks: { tree[$0] }, relationName: { "r\($0)" }, jobs: 2)
        #expect(partitioned.lockSeconds == 24.5 && partitioned.lockRelation == "r2" && partitioned.lowerBoundSeconds == 24.5)
        // With 8 connections the three take at least the longest build's 4 s.
        let wide = RestoreTimeline.bound(durations: [10, 10, 1, 4, 4], deps: { _ in [] }, locks: { tree[$0] }, jobs: 8)
        #expect(wide.lockSeconds == 24)
        // Two foreign keys (4 s each, serial on 1) wait for a load (1 s) and
        // two builds (3 s each) that lock nothing they do; an attachment (1
        // s) waits for nothing. While a key runs, the other connection can
        // only attach (the rest is done before the keys start): 8 s of keys,
        // then the other 8 s less that 1 s over 2 connections, 11.5 s. From
        // the keys' earliest start alone (3 s): 11 s.
        let waited: [[Int]] = [[2, 4, 5], [2, 4, 5], [], [], [], []]
        let before = RestoreTimeline.bound(
            durations: [4, 4, 1, 1, 3, 3], deps: { waited[$0] }, locks: { $0 < 2 ? [L(relation: 1, serial: true)] : [] },
            relationName: { "r\($0)" }, jobs: 2)
        #expect(before.criticalPathSeconds == 7 && before.statementSeconds == 16)
        #expect(before.lockSeconds == 11.5 && before.lockRelation == "r1" && before.lowerBoundSeconds == 11.5)
        // One serial step alone is no chain either.
        let single = RestoreTimeline.bound(durations: [3, 1], deps: { $0 == 1 ? [0] : [] }, locks: { $0 == 0 ? [L(relation: 1, serial: true)] : [] }, jobs: 1)
        #expect(single.lockSeconds == 0 && single.lowerBoundSeconds == 4)
    }

    @Test("a restore killed with SIGKILL during the post-data and rerun with --resume ends exact")
    func killInPostData() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        let (targetDB, conn) = try RestoreFixtures.emptyTarget(fixture)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Shell.pgvault())
        process.arguments = ["restore", fixture.archive, "--dbname", targetDB.conninfo, "--jobs", "2", "--quiet", "--json"]
        var environment = ProcessInfo.processInfo.environment
        environment[PostData.testDelayVariable] = "40"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until every unit is loaded and some post-data is done, then kill it.
        var steps = 0, units = 0
        let deadline = Date().addingTimeInterval(120)
        while (steps < 40 || units < fixture.manifest.units.count) && Date() < deadline && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            steps = Int((try? conn.query("SELECT count(*) FROM pgvault_restore.steps WHERE step LIKE 'post-data:%'").scalar ?? "0") ?? "0") ?? 0
            units = Int((try? conn.query("SELECT count(*) FROM pgvault_restore.units").scalar ?? "0") ?? "0") ?? 0
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let done = Int(try conn.query("SELECT count(*) FROM pgvault_restore.steps WHERE step LIKE 'post-data:%'").scalar ?? "0") ?? 0
        #expect(done >= 40)
        #expect(try conn.query("SELECT count(*) FROM pgvault_restore.units").scalar == String(fixture.manifest.units.count))
        // Small units load several to a transaction, each with its journal row.
        #expect(try conn.query("SELECT count(DISTINCT xmin::text) < count(*) FROM pgvault_restore.units").scalar == "t")
        // ...without TRUNCATE + FREEZE: their tables keep the files they were created with.
        #expect(try conn.query("""
            SELECT count(*) FROM pgvault_restore.units u
            WHERE (SELECT count(*) FROM pgvault_restore.units o WHERE o.xmin::text = u.xmin::text) > 1
              AND pg_relation_filenode(u.destination::regclass) <> u.destination::regclass::oid
            """).scalar == "0")

        // The journal names the archive by the SHA-256 of its manifest's
        // bytes; earlier builds named it by the manifest encoded again,
        // which for an archive pgvault wrote is the same.
        let named = try Archive.manifestAndDigest(of: try Archive.open(fixture.archive)).sha256
        #expect(try conn.query("SELECT archive_id FROM pgvault_restore.state").scalar == named)
        #expect(try SHA2.hex(.sha256, of: try fixture.manifest.encoded()) == named)

        var options = RestoreOptions(archive: fixture.archive, conninfo: targetDB.conninfo)
        options.jobs = 2
        options.resume = true
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyOK == true, "\(summary.verifyFailures)")
        #expect(summary.units == 0 && summary.unitsSkipped == fixture.manifest.units.count)
        #expect(summary.postDataStatements > 0)
        let source = try fixture.db.connect()
        try RestoreFixtures.expectSameTables(source, conn)
        let sourceSchema = try RestoreFixtures.pgDump(fixture.db, section: nil, bin: targetDB.server.binDir)
        let restoredSchema = try RestoreFixtures.pgDump(targetDB, section: nil, bin: targetDB.server.binDir)
        #expect(RestoreFixtures.normalized(sourceSchema) == RestoreFixtures.normalized(restoredSchema))
        #expect(try conn.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").scalar == "0")
        #expect(try conn.query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
    }

    @Test("--verify standard fails on a foreign key left NOT VALID without reading the tables back; --verify full reads them back")
    func verificationLevels() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        // Reactions without their messages: the foreign key cannot be validated.
        let (partial, _) = try RestoreFixtures.emptyTarget(fixture)
        var options = RestoreOptions(archive: fixture.archive, conninfo: partial.conninfo)
        options.excludeTables = ["messages*"]
        let standard = try await RestoreEngine.run(options)
        #expect(standard.verifyLevel == "standard" && standard.verifyOK == false)
        #expect(standard.verifyFailures.contains { $0.hasPrefix("foreign key message_reactions_fk_message on public.message_reactions is NOT VALID") },
                "\(standard.verifyFailures)")

        let (whole, conn) = try RestoreFixtures.emptyTarget(fixture)
        options = RestoreOptions(archive: fixture.archive, conninfo: whole.conninfo)
        options.verification = .full
        let lines = RestoreFixtures.Lines()
        options.log = { lines.add($0) }
        let full = try await RestoreEngine.run(options)
        #expect(full.verifyLevel == "full" && full.verifyOK == true, "\(full.verifyFailures)")
        #expect(lines.all.contains { $0.hasPrefix("OK (standard)") } == false)
        #expect(lines.all.contains { $0.hasPrefix("checking the foreign keys; \(fixture.manifest.tables.filter { $0.kind != "partitioned" }.count) tables were read back") },
                "\(lines.all)")
        try RestoreFixtures.expectSameTables(try fixture.db.connect(), conn)
    }

    @Test("--verify full reads each table back as a step of the schedule, after its loads, keys and indexes and before the foreign keys wait on it; a table that differs from the manifest fails")
    func readBacksInTheSchedule() async throws {
        let fixture = try await RestoreFixtures.source(TestServers.newest)
        // The archive with the row digest of one unit of users changed: the
        // rows load (COPY's count and the member's checksum are right), and
        // only the read-back can see it.
        let archive = try TestScratch.path("read-back-archive")
        try FileManager.default.copyItem(atPath: fixture.archive, toPath: archive)
        var manifest = fixture.manifest
        let k = try #require(manifest.units.firstIndex { $0.qualifiedTable == "public.users" })
        let digest = manifest.units[k].rowDigest
        manifest.units[k].rowDigest = (digest.first == "0" ? "1" : "0") + digest.dropFirst()
        try Data(try manifest.encoded()).write(to: URL(fileURLWithPath: archive + "/manifest.json"))

        let (target, _) = try RestoreFixtures.emptyTarget(fixture)
        var options = RestoreOptions(archive: archive, conninfo: target.conninfo)
        options.verification = .full
        options.jobs = 2
        options.timeline = try TestScratch.path("read-back") + ".jsonl"
        let summary = try await RestoreEngine.run(options)
        #expect(summary.verifyLevel == "full" && summary.verifyOK == false)
        #expect(summary.verifyFailures.contains { $0.hasPrefix("digest public.users") }, "\(summary.verifyFailures)")
        #expect(!summary.verifyFailures.contains { $0.hasPrefix("digest public.channels") }, "\(summary.verifyFailures)")

        var entries: [String: [String: Any]] = [:]
        for line in try String(contentsOfFile: try #require(options.timeline), encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            entries[try #require(object["id"] as? String)] = object
        }
        let readBacks = entries.filter { $0.key.hasPrefix("verify:") }
        let leaves = fixture.manifest.tables.filter { $0.kind != "partitioned" }
        #expect(readBacks.count == leaves.count)
        for (id, entry) in readBacks {
            let relation = try #require(entry["relation"] as? String)
            let deps = try #require(entry["deps"] as? [String])
            #expect((entry["worker"] as? Int ?? 0) >= 1, "\(id) ran on the leader")
            #expect(!deps.contains { $0.hasPrefix("fk:") }, "\(id) waits on a foreign key")
            let loads = fixture.manifest.units.filter { $0.qualifiedTable == relation }.map { "load:\($0.id)" }
            #expect(Set(loads).isSubset(of: Set(deps)), "\(id): \(deps)")
            for dep in deps {
                #expect((entries[dep]?["end"] as? Double ?? .infinity) <= (entry["start"] as? Double ?? -1), "\(id) started before \(dep) ended")
            }
        }
        // users' primary key is among its read-back's dependencies.
        #expect((readBacks["verify:public.users"]?["deps"] as? [String] ?? []).contains { $0.hasPrefix("key:public.users ") }, "\(readBacks["verify:public.users"] ?? [:])")
    }
}
