import Foundation
import Testing
import TestSupport

/// scripts/restore-sim: replays a restore's statement timeline under the
/// phase runner and the dependency scheduler. A small timeline whose answers
/// can be worked out by hand pins its arithmetic.
@Suite("restore-sim: the scheduling simulator")
struct RestoreSimTests {
    static let script = RepoPaths.root + "/scripts/restore-sim"

    /// schema (1 s, leader) → load a (4 s) and load b (1 s) → key b (3 s) after
    /// load b, key a (1 s) after load a → fk (1 s) after both keys.
    static let timeline = """
        {"id":"schema","kind":"schema","relation":null,"deps":[],"start":0,"end":1,"worker":0,"bytes":0}
        {"id":"load:a","kind":"load","relation":"a","deps":["schema"],"start":1,"end":5,"worker":1,"bytes":100}
        {"id":"load:b","kind":"load","relation":"b","deps":["schema"],"start":1,"end":2,"worker":2,"bytes":10}
        {"id":"key:b","kind":"key","relation":"b","deps":["load:b"],"start":2,"end":5,"worker":2,"bytes":0}
        {"id":"key:a","kind":"key","relation":"a","deps":["load:a"],"start":5,"end":6,"worker":1,"bytes":0}
        {"id":"fk:a_b","kind":"fk","relation":"a","deps":["key:a","key:b"],"start":6,"end":7,"worker":1,"bytes":0}

        """

    struct Prediction: Decodable {
        let jobs: Int
        let phases: Double
        let dependencies: Double
        let lowerBound: Double
        let actual: Double?
    }

    struct Report: Decodable {
        let steps: Int
        let criticalPath: Double
        let workerSeconds: Double
        let predictions: [Prediction]
    }

    func simulate(_ text: String, _ arguments: [String]) throws -> Shell.Output {
        let folder = try TestScratch.Folder("restore-sim")
        defer { folder.remove() }
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder["timeline.jsonl"]))
        return try Shell.capture(["/usr/bin/env", "python3", Self.script, folder["timeline.jsonl"]] + arguments)
    }

    @Test("phases wait for each phase's slowest statement; dependencies start a table's key as soon as its data is in")
    func predictsBothSchedulers() throws {
        let result = try simulate(Self.timeline, ["--json", "--jobs", "1,2"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.steps == 6)
        #expect(report.criticalPath == 7)
        #expect(report.workerSeconds == 10)
        let one = try #require(report.predictions.first { $0.jobs == 1 })
        #expect(one.phases == 11 && one.dependencies == 11 && one.lowerBound == 11)
        let two = try #require(report.predictions.first { $0.jobs == 2 })
        // Phases: 1 (schema) + max(4, 1) loads + max(3, 1) keys + 1 fk = 9.
        #expect(two.phases == 9)
        // Dependencies: key b runs while load a still loads: the critical path, 7.
        #expect(two.dependencies == 7)
        #expect(two.lowerBound == 7)
    }

    @Test("steps whose locks conflict never run at once, and the bound counts them one after another")
    func locksKeepStepsApart() throws {
        // Two foreign keys on m (4 s each) take SHARE ROW EXCLUSIVE on it, an
        // index build on m (2 s) SHARE, a load of w (3 s) nothing.
        let timeline = """
            {"id":"schema","kind":"schema","relation":null,"deps":[],"start":0,"end":1,"worker":0,"bytes":0,"locks":[]}
            {"id":"load:w","kind":"load","relation":"w","deps":["schema"],"start":1,"end":4,"worker":2,"bytes":10,"locks":[]}
            {"id":"index:z","kind":"index","relation":"m","deps":["schema"],"start":9,"end":11,"worker":1,"bytes":0,"locks":["ShareLock m"]}
            {"id":"fk:x","kind":"fk","relation":"m","deps":["schema"],"start":1,"end":5,"worker":1,"bytes":0,"locks":["ShareRowExclusiveLock m"]}
            {"id":"fk:y","kind":"fk","relation":"m","deps":["schema"],"start":5,"end":9,"worker":1,"bytes":0,"locks":["ShareRowExclusiveLock m","ShareRowExclusiveLock w"]}

            """
        let result = try simulate(timeline, ["--json", "--jobs", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        let two = try #require(report.predictions.first)
        // Dependencies: fk x and load w from 1 s; fk y from 5 s (x's lock),
        // the build from 9 s (it conflicts with both keys): 11 s, where
        // without the locks it would be 1 + 4 + 3 = 8.
        #expect(two.dependencies == 11)
        // Phases: 1 + 3 (load) + 2 (index) + 4 + 4 (the keys, one after the other).
        #expect(two.phases == 14)
        // The bound: from 1 s, the two keys and the build one after another.
        #expect(report.criticalPath == 5 && two.lowerBound == 11)

        // Both keys lock m and its partitions p and q; a build on each
        // partition (2 s) and the key ON ONLY m (1 s) conflict with both, so
        // they go before or after them: from 1 s, the keys' 8 s, then 5 s
        // over 2 workers (2.5 s) or, over 8, at least one build's 2 s.
        let tree = """
            {"id":"schema","kind":"schema","relation":null,"deps":[],"start":0,"end":1,"worker":0,"bytes":0,"locks":[]}
            {"id":"fk:x","kind":"fk","relation":"m","deps":["schema"],"start":1,"end":5,"worker":1,"bytes":0,"locks":["ShareRowExclusiveLock m","ShareRowExclusiveLock p","ShareRowExclusiveLock q"]}
            {"id":"fk:y","kind":"fk","relation":"m","deps":["schema"],"start":5,"end":9,"worker":1,"bytes":0,"locks":["ShareRowExclusiveLock m","ShareRowExclusiveLock p","ShareRowExclusiveLock q"]}
            {"id":"key:m","kind":"key","relation":"m","deps":["schema"],"start":9,"end":10,"worker":1,"bytes":0,"locks":["AccessExclusiveLock m"]}
            {"id":"index:p","kind":"index","relation":"p","deps":["schema"],"start":9,"end":11,"worker":2,"bytes":0,"locks":["ShareLock p"]}
            {"id":"index:q","kind":"index","relation":"q","deps":["schema"],"start":10,"end":12,"worker":1,"bytes":0,"locks":["ShareLock q"]}

            """
        let partitioned = try simulate(tree, ["--json", "--jobs", "2,8"])
        #expect(partitioned.status == 0, "\(partitioned.stderr)")
        let bounds = try JSONDecoder().decode(Report.self, from: Data(partitioned.stdout.utf8)).predictions.map(\.lowerBound)
        #expect(bounds == [11.5, 11])

        // Two keys (4 s each) wait for a load (1 s) and two builds (3 s
        // each); an attachment (1 s) waits for the schema only. While a key
        // runs the other worker can only attach: after the schema's 1 s, the
        // keys' 8 s and the other 8 s less 1 over 2 workers, 12.5 s (from the
        // keys' earliest start alone, 4 + 8 = 12).
        let waited = """
            {"id":"schema","kind":"schema","relation":null,"deps":[],"start":0,"end":1,"worker":0,"bytes":0,"locks":[]}
            {"id":"load:l","kind":"load","relation":"l","deps":["schema"],"start":1,"end":2,"worker":1,"bytes":0,"locks":[]}
            {"id":"index:b1","kind":"index","relation":"b","deps":["schema"],"start":1,"end":4,"worker":2,"bytes":0,"locks":[]}
            {"id":"index:b2","kind":"index","relation":"b","deps":["schema"],"start":2,"end":5,"worker":1,"bytes":0,"locks":[]}
            {"id":"attach:x","kind":"attach","relation":"b","deps":["schema"],"start":4,"end":5,"worker":2,"bytes":0,"locks":[]}
            {"id":"fk:1","kind":"fk","relation":"m","deps":["load:l","index:b1","index:b2"],"start":5,"end":9,"worker":1,"bytes":0,"locks":["ShareRowExclusiveLock m"]}
            {"id":"fk:2","kind":"fk","relation":"m","deps":["load:l","index:b1","index:b2"],"start":9,"end":13,"worker":1,"bytes":0,"locks":["ShareRowExclusiveLock m"]}

            """
        let alone = try simulate(waited, ["--json", "--jobs", "2"])
        #expect(alone.status == 0, "\(alone.stderr)")
        #expect(try JSONDecoder().decode(Report.self, from: Data(alone.stdout.utf8)).predictions.map(\.lowerBound) == [12.5])

        let bad = try simulate(#"{"id":"a","kind":"load","deps":[],"start":0,"end":1,"worker":1,"locks":["Exclusive m"]}"#, [])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("line 1") && bad.stderr.contains("'Exclusive m'"))
    }

    @Test("a real run's wall time is printed beside the prediction for its job count")
    func actualBesideThePrediction() throws {
        let folder = try TestScratch.Folder("restore-sim-actual")
        defer { folder.remove() }
        try Data(Self.timeline.utf8).write(to: URL(fileURLWithPath: folder["run.jsonl"]))
        let result = try simulate(Self.timeline, ["--json", "--jobs", "2", "--actual", "4=\(folder["run.jsonl"])"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.predictions.map(\.jobs) == [2, 4])
        #expect(report.predictions.last?.actual == 7)
    }

    @Test("a step that depends on a missing step, a cycle or a line that is not a step is refused naming it")
    func refusesBadTimelines() throws {
        let missing = try simulate(#"{"id":"a","kind":"load","deps":["nowhere"],"start":0,"end":1,"worker":1}"#, [])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("'nowhere'"))

        let cycle = try simulate("""
            {"id":"a","kind":"load","deps":["b"],"start":0,"end":1,"worker":1}
            {"id":"b","kind":"key","deps":["a"],"start":1,"end":2,"worker":1}
            """, [])
        #expect(cycle.status == 2)
        #expect(cycle.stderr.contains("cycle"))

        let garbage = try simulate("not json\n", [])
        #expect(garbage.status == 2)
        #expect(garbage.stderr.contains("line 1"))

        let empty = try simulate("\n", [])
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("holds no steps"))
    }
}
