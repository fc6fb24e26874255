import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

@Suite("wal-status: is point-in-time recovery possible?")
struct WalStatusTests {
    // MARK: - Names and arithmetic (no database)

    @Test("LSNs parse and print as PostgreSQL does")
    func lsns() throws {
        #expect(WalLSN("0/1A2B3C4")?.value == 0x1A2B3C4)
        #expect(WalLSN("16/B374D848")?.value == 0x16_B374_D848)
        #expect(WalLSN(" 0/0 ")?.value == 0)
        #expect(WalLSN("a/ff")?.description == "A/FF")
        #expect(WalLSN("FFFFFFFF/FFFFFFFF")?.value == UInt64.max)
        for bad in ["", "0", "0/", "/1", "1/2/3", "g/1", "100000000/0", "0x1/2", "-1/0"] {
            #expect(WalLSN(bad) == nil, "\(bad)")
        }
    }

    @Test("LSN <-> segment name at 16MB, 64MB and 1MB segments")
    func segmentNames() throws {
        let g16 = WalGeometry.standard
        #expect(g16.segmentsPerXLogID == 0x100)
        #expect(g16.segmentNumber(containing: WalLSN("0/1A2B3C4")!) == 1)
        #expect(g16.fileName(timeline: 1, segment: 1) == "000000010000000000000001")
        #expect(g16.fileName(timeline: 1, segment: g16.segmentNumber(containing: WalLSN("1/0")!)) == "000000010000000100000000")
        #expect(g16.fileName(timeline: 0x1F, segment: g16.segmentNumber(containing: WalLSN("16/B374D848")!)) == "0000001F00000016000000B3")
        // pg_walfile_name(pg_switch_wal()) names the segment that just ended.
        #expect(g16.segmentNumber(endingAt: WalLSN("0/2000000")!) == 1)
        #expect(g16.segmentNumber(endingAt: WalLSN("0/2000001")!) == 2)
        #expect(g16.startLSN(ofSegment: 0xB3 + 0x1600).description == "16/B3000000")
        // Names round-trip; names impossible at this size are refused.
        let id = try #require(g16.segmentID(fromName: "0000000200000003000000FF"))
        #expect(id == WalSegmentID(timeline: 2, segment: 3 * 256 + 255))
        #expect(g16.fileName(id) == "0000000200000003000000FF")
        #expect(g16.segmentID(fromName: "000000010000000000000100") == nil)
        #expect(g16.segmentID(fromName: "00000001000000000000000a") == nil)  // lower case
        #expect(g16.segmentID(fromName: "00000001000000000000000") == nil)

        let g64 = try #require(WalGeometry(segmentSize: 64 << 20))
        #expect(g64.segmentsPerXLogID == 64)
        #expect(g64.fileName(timeline: 1, segment: g64.segmentNumber(containing: WalLSN("1/4000000")!)) == "000000010000000100000001")
        #expect(g64.segmentID(fromName: "000000010000000000000040") == nil)
        #expect(g64.display == "64MB")
        let g1 = try #require(WalGeometry(segmentSize: 1 << 20))
        #expect(g1.fileName(timeline: 1, segment: g1.segmentNumber(containing: WalLSN("0/FFFFFFFF")!)) == "000000010000000000000FFF")
        #expect(WalGeometry(segmentSize: 3 << 20) == nil)
        #expect(WalGeometry(segmentSize: 2 << 30) == nil)
    }

    @Test("archive file names: segments, compressed, .partial, .backup, .history, others")
    func archiveNames() {
        let seg = RawSegmentName("000000010000000000000003")!
        #expect(WalArchiveName("000000010000000000000003")?.kind == .segment(seg))
        #expect(WalArchiveName("000000010000000000000003")?.compression == nil)
        for suffix in ["gz", "zst", "lz4", "bz2", "xz"] {
            #expect(WalArchiveName("000000010000000000000003.\(suffix)")?.compression == suffix)
            #expect(WalArchiveName("000000010000000000000003.\(suffix)")?.kind == .segment(seg))
        }
        #expect(WalArchiveName("000000010000000000000003.partial")?.kind == .partial(seg))
        #expect(WalArchiveName("000000010000000000000003.partial.gz")?.kind == .partial(seg))
        #expect(WalArchiveName("000000010000000000000003.00000028.backup")?.kind == .backupLabel(seg, offset: 0x28))
        #expect(WalArchiveName("00000002.history")?.kind == .history(timeline: 2))
        #expect(WalArchiveName("0000000A.history.zst")?.kind == .history(timeline: 10))
        for other in ["", "README", "000000010000000000000003.tmp", "000000010000000000000003.gz.tmp",
                      "00000001000000000000000a", "0000002.history", "000000010000000000000003.28.backup",
                      ".000000010000000000000003", "archive_status"] {
            #expect(WalArchiveName(other) == nil, "\(other)")
        }
    }

    @Test("timeline history files and the timeline path recovery follows")
    func timelineHistory() throws {
        let text = """
            1\t0/3000060\tno recovery target specified

            # a comment
            2\t0/5800000\tbefore 2025-01-01 00:00:00+00
            """
        let entries = try #require(TimelineHistoryEntry.parse(text))
        #expect(entries == [
            TimelineHistoryEntry(parent: 1, switchpoint: WalLSN("0/3000060")!),
            TimelineHistoryEntry(parent: 2, switchpoint: WalLSN("0/5800000")!),
        ])
        #expect(TimelineHistoryEntry.parse("2\t0/1\tx\n1\t0/2\ty") == nil)  // timelines must increase
        #expect(TimelineHistoryEntry.parse("one two") == nil)
        let path = TimelinePath(target: 3, history: entries, geometry: .standard)
        #expect(path.timelines == [1, 2, 3])
        #expect(path.timelines(forSegment: 2) == [1])
        #expect(path.timelines(forSegment: 3) == [2, 1])  // TL2's copy of the switch segment first
        #expect(path.timelines(forSegment: 4) == [2])
        #expect(path.timelines(forSegment: 5) == [3, 2])
        #expect(path.timelines(forSegment: 9) == [3])
        #expect(path.timeline(forSegment: 3) == 2)
    }

    static func listing(_ names: [String], size: UInt64 = 16 << 20, extra: [(String, UInt64)] = [],
                        histories: [UInt32: WalArchiveListing.HistoryContent] = [:]) -> WalArchiveListing {
        WalArchiveListing(
            directory: "/archive",
            entries: names.map { WalArchiveEntry(fileName: $0, size: size, modified: 0) }
                + extra.map { WalArchiveEntry(fileName: $0.0, size: $0.1, modified: 0) },
            histories: histories)
    }

    static func segs(_ tli: UInt32, _ range: ClosedRange<UInt64>, _ g: WalGeometry = .standard) -> [String] {
        range.map { g.fileName(timeline: tli, segment: $0) }
    }

    @Test("gaps are found and named; compressed and label files count; sizes are checked")
    func gaps() throws {
        var names = Self.segs(1, 1...12)
        names.removeAll { $0 == "000000010000000000000004" || $0 == "000000010000000000000007" || $0 == "000000010000000000000008" }
        names[0] += ".gz"  // compressed segment 1 is present
        let listing = Self.listing(
            names, extra: [("000000010000000000000002.00000028.backup", 300), ("000000010000000000000005", 4096),
                           ("000000010000000000000006.zst", 0), ("notes.txt", 10)])
        let a = WalArchiveAnalysis.analyze(listing, WalArchiveQuery(geometry: .standard, now: 1000))
        #expect(a.start == "000000010000000000000001")
        #expect(a.end == "00000001000000000000000C")
        #expect(a.gaps == [
            .init(first: "000000010000000000000004", last: "000000010000000000000004", count: 1),
            .init(first: "000000010000000000000007", last: "000000010000000000000008", count: 2),
        ])
        #expect(a.missingNames == ["000000010000000000000004", "000000010000000000000007", "000000010000000000000008"])
        #expect(a.wrongSize.map(\.name) == ["000000010000000000000005", "000000010000000000000006.zst"])
        #expect(a.compressedSegments == 2)
        #expect(a.backupLabels == ["000000010000000000000002.00000028.backup"])
        #expect(a.unrecognized == ["notes.txt"])

        // From a backup's start; the server says it archived further than the folder holds.
        var q = WalArchiveQuery(geometry: .standard, start: WalLSN("0/9000028"), lastArchived: "00000001000000000000000E", now: 1000)
        var b = WalArchiveAnalysis.analyze(listing, q)
        #expect(b.start == "000000010000000000000009")
        #expect(b.missingNames == ["00000001000000000000000D", "00000001000000000000000E"])
        // A start before the oldest segment present: the missing head is a gap.
        q.start = WalLSN("0/0")
        q.lastArchived = nil
        b = WalArchiveAnalysis.analyze(Self.listing(Self.segs(1, 3...4)), q)
        #expect(b.gaps == [.init(first: "000000010000000000000000", last: "000000010000000000000002", count: 3)])
        // A start after the last archived segment: nothing to check yet.
        q.start = WalLSN("0/9000000")
        b = WalArchiveAnalysis.analyze(Self.listing(Self.segs(1, 3...4)), q)
        #expect(b.gaps.isEmpty && b.startSegment == 9 && b.endSegment == 4)
        // An empty folder with nothing archived is fine; with something archived it is a gap.
        #expect(WalArchiveAnalysis.analyze(Self.listing([]), WalArchiveQuery(now: 0)).gaps.isEmpty)
        #expect(WalArchiveAnalysis.analyze(Self.listing([]), WalArchiveQuery(lastArchived: "000000010000000000000003", now: 0)).missingNames
            == ["000000010000000000000003"])
    }

    @Test("offline: segment size inferred from the files, timeline from the newest present")
    func offlineInference() {
        let g64 = WalGeometry(segmentSize: 64 << 20)!
        let names = Self.segs(1, 0...2, g64) + Self.segs(1, 0x3F...0x41, g64)
        let a = WalArchiveAnalysis.analyze(Self.listing(names, size: 64 << 20), WalArchiveQuery(now: 0))
        #expect(a.geometry == g64 && a.geometrySource == "file sizes")
        #expect(a.missingNames.first == "000000010000000000000003" && a.missingSegments == 0x3F - 3)
        #expect(a.missingNames.last == "00000001000000000000003E")
        // Only compressed files: the default size, and no size complaints.
        let c = WalArchiveAnalysis.analyze(Self.listing(Self.segs(1, 1...3).map { $0 + ".zst" }, size: 100), WalArchiveQuery(now: 0))
        #expect(c.geometry == .standard && c.geometrySource == "default" && c.wrongSize.isEmpty && c.gaps.isEmpty)
    }

    @Test("a timeline switch: segments follow the history; a missing history file is named")
    func timelineSwitch() {
        // Promotion in segment 5: TL1 has 1...4 and 5.partial, TL2 has 5... onwards.
        let names = Self.segs(1, 1...4) + ["000000010000000000000005.partial"] + Self.segs(2, 5...8)
        let history: [UInt32: WalArchiveListing.HistoryContent] = [
            2: .parsed([TimelineHistoryEntry(parent: 1, switchpoint: WalLSN("0/50000A0")!)]),
        ]
        let withHistory = Self.listing(names + ["00000002.history"], histories: history)
        let a = WalArchiveAnalysis.analyze(withHistory, WalArchiveQuery(geometry: .standard, targetTimeline: 2, now: 0))
        #expect(a.gaps.isEmpty && a.missingHistory.isEmpty)
        #expect(a.path == [1, 2] && a.partials == ["000000010000000000000005.partial"])
        #expect(a.start == "000000010000000000000001" && a.end == "000000020000000000000008")
        #expect(a.segmentsInRange == 8)

        // TL2's segment 6 missing: named on timeline 2.
        let holed = Self.listing(names.filter { $0 != "000000020000000000000006" } + ["00000002.history"], histories: history)
        #expect(WalArchiveAnalysis.analyze(holed, WalArchiveQuery(geometry: .standard, targetTimeline: 2, now: 0)).missingNames
            == ["000000020000000000000006"])

        // Without 00000002.history recovery from TL1 cannot follow the switch.
        let b = WalArchiveAnalysis.analyze(Self.listing(names), WalArchiveQuery(geometry: .standard, now: 0))
        #expect(b.targetTimeline == 2 && b.path == nil && b.gaps.isEmpty)
        #expect(b.missingHistory == [.init(timeline: 2, required: true)])
        // Starting on TL2 it is not needed for recovery, but still reported.
        let c = WalArchiveAnalysis.analyze(Self.listing(Self.segs(2, 5...8)), WalArchiveQuery(geometry: .standard, now: 0))
        #expect(c.missingHistory == [.init(timeline: 2, required: false)])

        let report = WalStatusEvaluator.evaluate(WalStatusInput(
            server: .offline, archive: .listing(Self.listing(names)), archiveDir: "/archive"))
        #expect(report.check("archive-history")?.status == .critical)
        #expect(report.check("archive-history")?.detail.contains("00000002.history") == true)
        #expect(report.exitCode == 2)
    }

    @Test("durations")
    func durations() {
        #expect(DurationText.seconds("90") == 90)
        #expect(DurationText.seconds("90s") == 90)
        #expect(DurationText.seconds("15m") == 900)
        #expect(DurationText.seconds("1h30m") == 5400)
        #expect(DurationText.seconds("2d") == 172_800)
        #expect(DurationText.seconds("0.5s") == 0.5)
        for bad in ["", "m", "15x", "1h30", "-5m", "0", "0s"] { #expect(DurationText.seconds(bad) == nil, "\(bad)") }
        #expect(DurationText.format(0.25) == "250ms")
        #expect(DurationText.format(42) == "42s")
        #expect(DurationText.format(250) == "4m10s")
        #expect(DurationText.format(3600) == "1h")
        #expect(DurationText.format(7500) == "2h5m")
        #expect(DurationText.format(90000) == "1d1h")
    }

    // MARK: - Judging the facts (no database)

    static let healthySettings = [
        "wal_level": "replica", "archive_mode": "on", "archive_command": "cp %p /a/%f",
        "archive_library": "", "archive_timeout": "60", "wal_segment_size": "16777216",
    ]

    static func facts(
        archiver: ArchiverStats = ArchiverStats(archivedCount: 5, lastArchivedWAL: "000000010000000000000005", lastArchivedAge: 30),
        ready: WalGathered<ReadyStats> = .value(ReadyStats(count: 0)), settings: [String: String] = healthySettings
    ) -> WalServerFacts {
        WalServerFacts(
            settings: settings, archiver: .value(archiver),
            position: .value(WalPosition(lsn: WalLSN("0/6000100")!, timeline: 1, fileName: "000000010000000000000006")),
            ready: ready)
    }

    static func judge(_ f: WalServerFacts, _ t: WalThresholds = WalThresholds()) -> WalStatusReport {
        WalStatusEvaluator.evaluate(WalStatusInput(server: .connected(f), thresholds: t))
    }

    /// One rule of ``WalStatusEvaluator``: an input built by hand and what the
    /// report must say about it.
    struct RuleCase: Sendable, CustomTestStringConvertible {
        let name: String
        let input: WalStatusInput
        var exitCode: Int32?
        /// The check `status`, `says` and `data` are about.
        var check: String?
        var status: WalCheckStatus?
        var says: [String] = []
        var data: [String: WalJSON] = [:]
        var summarySays: [String] = []
        var backlogSegments: Int64?
        var testDescription: String { name }

        init(_ name: String, _ facts: WalServerFacts, _ thresholds: WalThresholds = WalThresholds(), exitCode: Int32? = nil,
             check: String? = nil, status: WalCheckStatus? = nil, says: [String] = [], data: [String: WalJSON] = [:],
             summarySays: [String] = [], backlogSegments: Int64? = nil) {
            self.init(name, WalStatusInput(server: .connected(facts), thresholds: thresholds), exitCode: exitCode,
                      check: check, status: status, says: says, data: data, summarySays: summarySays, backlogSegments: backlogSegments)
        }

        init(_ name: String, _ input: WalStatusInput, exitCode: Int32? = nil, check: String? = nil, status: WalCheckStatus? = nil,
             says: [String] = [], data: [String: WalJSON] = [:], summarySays: [String] = [], backlogSegments: Int64? = nil) {
            (self.name, self.input, self.exitCode, self.check, self.status) = (name, input, exitCode, check, status)
            (self.says, self.data, self.summarySays, self.backlogSegments) = (says, data, summarySays, backlogSegments)
        }
    }

    static let oldArchive = ArchiverStats(archivedCount: 5, lastArchivedWAL: "000000010000000000000005", lastArchivedAge: 1000)
    static let waiting = WalGathered<ReadyStats>.value(ReadyStats(count: 3, oldest: "000000010000000000000006", oldestAge: 900))

    static func failingArchiver(now: Bool) -> ArchiverStats {
        var a = oldArchive
        (a.failedCount, a.lastFailedWAL, a.lastFailedAge, a.failing) = (4, "000000010000000000000006", 2, now)
        return a
    }

    /// The healthy settings with `changes` (nil: the setting is not visible).
    static func settings(_ changes: [String: String?]) -> [String: String] {
        var s = healthySettings
        for (key, value) in changes { s[key] = value }
        return s
    }

    static func switched(_ result: WalGathered<SwitchResult>) -> WalServerFacts {
        var f = facts()
        f.switchResult = result
        return f
    }

    static let archiveCommandCases: [RuleCase] = ["", "  ", "true", "/bin/true"].map { (command: String) -> RuleCase in
        RuleCase("archive_command '\(command)': CRITICAL with the fix", facts(settings: settings(["archive_command": command])),
                 check: "settings", status: .critical, says: ["ALTER SYSTEM SET archive_command = '"])
    }

    static let ruleCases: [RuleCase] = [
        RuleCase("healthy", facts(), exitCode: 0),
        // --max-age: only while something waits.
        RuleCase("--max-age exceeded, nothing waits: OK", facts(archiver: oldArchive), WalThresholds(maxAge: 600), exitCode: 0),
        RuleCase("--max-age exceeded while segments wait: WARNING", facts(archiver: oldArchive, ready: waiting), WalThresholds(maxAge: 600),
                 check: "archive-age", status: .warning),
        RuleCase("twice --max-age exceeded while segments wait: CRITICAL", facts(archiver: oldArchive, ready: waiting), WalThresholds(maxAge: 400),
                 check: "archive-age", status: .critical),
        RuleCase("within --max-age while segments wait: OK", facts(archiver: oldArchive, ready: waiting), WalThresholds(maxAge: 1200), exitCode: 0),
        // --max-backlog: WARNING above N, CRITICAL above 2N.
        RuleCase("backlog at --max-backlog: OK", facts(ready: waiting), WalThresholds(maxBacklog: 3), exitCode: 0),
        RuleCase("backlog above --max-backlog: WARNING", facts(ready: waiting), WalThresholds(maxBacklog: 2), exitCode: 1),
        RuleCase("backlog above twice --max-backlog: CRITICAL", facts(ready: waiting), WalThresholds(maxBacklog: 1), exitCode: 2),
        // Failing now: CRITICAL, naming the segment; an old, recovered failure is OK.
        RuleCase("archiver failing now: CRITICAL, naming the segment", facts(archiver: failingArchiver(now: true), ready: waiting), exitCode: 2,
                 check: "archiver", data: ["segment": .string("000000010000000000000006")], summarySays: ["000000010000000000000006"]),
        RuleCase("an old, recovered archiver failure: OK", facts(archiver: failingArchiver(now: false)), exitCode: 0),
        // Settings: each broken one is CRITICAL with its fix.
        RuleCase("archive_mode off: CRITICAL with the fix", facts(settings: settings(["archive_mode": "off"])), check: "settings", status: .critical,
                 says: ["ALTER SYSTEM SET archive_mode = on; ALTER SYSTEM SET archive_command = '", "restart", "overrides postgresql.conf"]),
        RuleCase("wal_level minimal and archive_mode off: both fixes", facts(settings: settings(["archive_mode": "off", "wal_level": "minimal"])),
                 check: "settings", says: ["ALTER SYSTEM SET wal_level = replica; ALTER SYSTEM SET archive_mode = on"]),
    ] + archiveCommandCases + [
        RuleCase("archive_library instead of archive_command: OK", facts(settings: settings(["archive_command": "", "archive_library": "basic_archive"])),
                 exitCode: 0),
        RuleCase("archive_command not visible: said", facts(settings: settings(["archive_command": nil])), check: "settings", says: ["not visible"]),
        // Skipped because of the role: said, and not held against the status...
        RuleCase("backlog not visible to the role: said, OK, estimated from positions", facts(ready: .skipped("needs pg_monitor")), exitCode: 0,
                 check: "backlog", says: ["needs pg_monitor"], backlogSegments: 0),  // 6 - 5 - 1
        // ...unless asked for: --switch not allowed is a WARNING.
        RuleCase("--switch not allowed: WARNING", switched(.skipped("pg_switch_wal() needs superuser")), exitCode: 1),
        RuleCase("--switch segment not archived: CRITICAL",
                 switched(.value(SwitchResult(segment: "000000010000000000000006", archived: false, seconds: 30))), exitCode: 2),
        RuleCase("could not connect: UNKNOWN", WalStatusInput(server: .unreachable("could not connect")), exitCode: 3),
        RuleCase("a known problem outranks UNKNOWN", WalStatusInput(
            server: .unreachable("could not connect"), archive: .unreadable(WalArchiveListing.missing("/nope")), archiveDir: "/nope"), exitCode: 2),
    ]

    @Test("thresholds, failing archiver, settings fixes, skipped checks", arguments: ruleCases)
    func judging(_ c: RuleCase) throws {
        let report = WalStatusEvaluator.evaluate(c.input)
        if let exitCode = c.exitCode { #expect(report.exitCode == exitCode, "\(report.summary)") }
        for text in c.summarySays { #expect(report.summary.contains(text), "\(text) in \(report.summary)") }
        if let backlog = c.backlogSegments { #expect(report.metrics.backlogSegments == backlog) }
        if let name = c.check {
            let check = try #require(report.check(name))
            if let status = c.status { #expect(check.status == status, "\(check.detail)") }
            for text in c.says { #expect(check.detail.contains(text), "\(text) in \(check.detail)") }
            for (key, value) in c.data { #expect(check.data[key] == value, "\(key)") }
        }
    }

    @Test("JSON and Prometheus output")
    func outputs() throws {
        var f = Self.facts(archiver: ArchiverStats(
            archivedCount: 5, lastArchivedWAL: "000000010000000000000005", lastArchivedAge: 30,
            failedCount: 1, lastFailedWAL: "000000010000000000000004", lastFailedAge: 100))
        f.ready = .skipped("needs pg_monitor")
        let report = Self.judge(f, WalThresholds(maxBacklog: 10))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(object["status"] as? String == "OK" && object["exitCode"] as? Int == 0)
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.map { $0["name"] as? String } == ["connection", "settings", "archiver", "archive-age", "backlog"])
        #expect(checks.allSatisfy { $0["status"] is String && $0["detail"] is String })
        let metrics = try #require(object["metrics"] as? [String: Any])
        #expect(metrics["archivedCount"] as? Int == 5 && metrics["failing"] as? Bool == false)

        let text = report.prometheus(labels: [("cluster", "main \"a\"")])
        #expect(text.contains("# TYPE pgvault_wal_archive_status gauge\npgvault_wal_archive_status{cluster=\"main \\\"a\\\"\"} 0\n"))
        for name in ["archived_count", "failed_count", "last_archived_age_seconds", "backlog_segments"] {
            #expect(text.contains("# HELP pgvault_wal_\(name) "), "\(name)")
            #expect(text.contains("\npgvault_wal_\(name){"), "\(name)")
        }
        #expect(text.contains("pgvault_wal_check_status{cluster=\"main \\\"a\\\"\",check=\"archiver\"} 0"))
        // Every sample line is `name{labels} number`.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let value = try #require(line.split(separator: " ").last)
            #expect(Double(value) != nil, "\(line)")
        }
        #expect(report.table().split(separator: "\n").count == 2 + report.checks.count)
    }

    @Test("a pgvault backup is refused as a start for PITR, with the reason; a base backup folder is read")
    func baseBackupFiles() throws {
        let dir = try TestScratch.directory("wal")
        try FileManager.default.createDirectory(atPath: dir + "/backup", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifest = dir + "/backup/manifest.json"
        // The shape docs/archive-format.md gives (other fields left out).
        try #"{"format": "pgvault-archive", "formatVersion": 2, "server": {"timeline": 1},"#
            .appending(#" "snapshot": {"walLSN": "0/5000028", "walSegment": "000000010000000000000005"}}"#)
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        try Shell.run(["/bin/tar", "-cf", dir + "/backup.tar", "-C", dir + "/backup", "manifest.json"])
        for path in [dir + "/backup", manifest, dir + "/backup.tar"] {
            let why = try #require(WalBaseBackupReader.pgvaultBackupError(path), "\(path)")
            #expect(why.contains("logical") && why.contains("pg_basebackup") && why.contains("--base-backup"))
            #expect(throws: PGVaultError.self) { try WalBaseBackupReader.read(path) }
        }

        // A pg_basebackup folder: the label says where it started, the manifest where it ended.
        let base = dir + "/base"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        #expect(WalBaseBackupReader.pgvaultBackupError(base) == nil)
        #expect(throws: PGVaultError.self) { try WalBaseBackupReader.read(base) }
        try Self.labelText.replacingOccurrences(of: "STOP", with: "X-STOP")
            .write(toFile: base + "/backup_label", atomically: true, encoding: .utf8)
        try #"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [], "WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000120" }]}"#
            .write(toFile: base + "/backup_manifest", atomically: true, encoding: .utf8)
        let b = try WalBaseBackupReader.read(base)
        #expect(b.label == "nightly" && b.start == WalLSN("0/2000028") && b.stop == WalLSN("0/2000120") && b.startTimeline == 1)
        #expect(try WalBaseBackupReader.read(base + "/backup_manifest").stop == WalLSN("0/2000120"))
        #expect(try WalBaseBackupReader.read(base + "/backup_label").stop == nil)
        #expect(throws: PGVaultError.self) { try WalBaseBackupReader.read(dir + "/missing") }

        // pg_basebackup -Ft: backup_label inside base.tar, backup_manifest beside it.
        let tarBase = dir + "/tarbase"
        try FileManager.default.createDirectory(atPath: tarBase, withIntermediateDirectories: true)
        try Shell.run(["/bin/tar", "-cf", tarBase + "/base.tar", "-C", base, "backup_label"])
        try FileManager.default.copyItem(atPath: base + "/backup_manifest", toPath: tarBase + "/backup_manifest")
        let t = try WalBaseBackupReader.read(tarBase)
        #expect(t.label == "nightly" && t.start == WalLSN("0/2000028") && t.stop == WalLSN("0/2000120"))
    }

    static let labelText = """
        START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
        STOP WAL LOCATION: 0/2000120 (file 000000010000000000000002)
        CHECKPOINT LOCATION: 0/2000080
        BACKUP METHOD: streamed
        BACKUP FROM: primary
        START TIME: 2026-12-04 07:30:00 UTC
        LABEL: nightly
        START TIMELINE: 1
        STOP TIME: 2026-12-04 07:30:02 UTC
        STOP TIMELINE: 1

        """

    @Test("backup history files and backup_label parse; their times convert")
    func backupLabels() throws {
        let b = try #require(WalBaseBackup.parseLabel(Self.labelText, source: "000000010000000000000002.00000028.backup"))
        #expect(b == WalBaseBackup(
            source: "000000010000000000000002.00000028.backup", label: "nightly", start: WalLSN("0/2000028")!, startTimeline: 1,
            stop: WalLSN("0/2000120")!, stopTimeline: 1, startTime: "2026-12-04 07:30:00 UTC", stopTime: "2026-12-04 07:30:02 UTC",
            method: "streamed"))
        #expect(WalBaseBackup.parseLabel("LABEL: x\n", source: "x") == nil)
        #expect(WalBaseBackup.epoch("2026-12-04 07:30:02 UTC") == 1_796_369_402)
        #expect(WalBaseBackup.epoch("2026-12-04 09:30:02 +02") == 1_796_369_402)
        #expect(WalBaseBackup.epoch("yesterday") == nil)
    }

    static func backup(_ start: String, _ stop: String, tli: UInt32 = 1, label: String) -> WalBaseBackup {
        WalBaseBackup(source: "\(label).backup", label: label, start: WalLSN(start)!, startTimeline: tli, stop: WalLSN(stop)!,
                      stopTimeline: tli, stopTime: "2026-12-04 07:30:02 UTC")
    }

    struct PitrCase: Sendable, CustomTestStringConvertible {
        let name: String
        let files: [String: UInt64]
        var backups: [WalBaseBackup] = [WalStatusTests.backup("0/2000028", "0/2000120", label: "nightly")]
        var history = false
        let status: WalCheckStatus
        let says: [String]
        var testDescription: String { name }
    }

    static func full(_ tli: UInt32, _ range: ClosedRange<UInt64>) -> [String: UInt64] {
        Dictionary(uniqueKeysWithValues: segs(tli, range).map { ($0, UInt64(16 << 20)) })
    }

    static let pitrCases: [PitrCase] = [
        PitrCase(name: "no base backup", files: full(1, 1...6), backups: [], status: .critical,
                 says: ["no base backup in /archive", "pg_basebackup"]),
        PitrCase(name: "contiguous from the backup", files: full(1, 1...8), status: .ok,
                 says: ["\"nightly\"", "consistent at 0/2000120 (2026-12-04 07:30:02 UTC)", "up to 0/9000000 (end of 000000010000000000000008", "7 segments"]),
        PitrCase(name: "a gap after the backup", files: full(1, 1...8).filter { $0.key != "000000010000000000000005" }, status: .critical,
                 says: ["up to 0/5000000", "not beyond: 000000010000000000000005 is missing"]),
        PitrCase(name: "a short segment after the backup", files: full(1, 1...8).merging(["000000010000000000000005": 5000]) { $1 },
                 status: .critical, says: ["up to 0/5000000", "000000010000000000000005 is short: 5000 of 16777216 bytes"]),
        PitrCase(name: "compressed segments count",
                 files: full(1, 1...8).filter { !["000000010000000000000005", "000000010000000000000006"].contains($0.key) }
                     .merging(["000000010000000000000005.zst": 1234, "000000010000000000000006.gz": 99]) { $1 },
                 status: .ok, says: ["up to 0/9000000"]),
        PitrCase(name: "the newest backup's WAL not archived yet: the one before it",
                 files: full(1, 1...7), backups: [backup("0/2000028", "0/2000120", label: "nightly"), backup("0/7000028", "0/8000010", label: "hourly")],
                 status: .ok, says: ["\"nightly\"", "up to 0/8000000", "\"hourly\" (hourly.backup) cannot be used", "not archived yet"]),
        PitrCase(name: "no backup whose own WAL is complete", files: full(1, 3...8), status: .critical,
                 says: ["no base backup can be recovered", "000000010000000000000002 is missing"]),
        PitrCase(name: "a timeline switch without its history file", files: full(1, 1...4).merging(full(2, 5...8)) { $1 }, status: .critical,
                 says: ["up to 0/5000000 (end of 000000010000000000000004", "00000002.history is missing"]),
        PitrCase(name: "a timeline switch with its history file", files: full(1, 1...4).merging(full(2, 5...8)) { $1 }, history: true,
                 status: .ok, says: ["up to 0/9000000 (end of 000000020000000000000008"]),
    ]

    @Test("pitr: from which base backup, up to where", arguments: pitrCases)
    func pitrWindow(_ c: PitrCase) throws {
        var listing = WalArchiveListing(
            directory: "/archive", entries: c.files.map { WalArchiveEntry(fileName: $0.key, size: $0.value, modified: 0) },
            baseBackups: Dictionary(uniqueKeysWithValues: c.backups.map { ($0.source, .success($0)) }))
        if c.history {
            listing.entries.append(WalArchiveEntry(fileName: "00000002.history", size: 40))
            listing.histories[2] = .parsed([TimelineHistoryEntry(parent: 1, switchpoint: WalLSN("0/50000A0")!)])
        }
        let report = WalStatusEvaluator.evaluate(WalStatusInput(server: .offline, archive: .listing(listing), now: 10_000))
        let pitr = try #require(report.check("pitr"))
        #expect(pitr.status == c.status, "\(pitr.detail)")
        for text in c.says { #expect(pitr.detail.contains(text), "\(text) in \(pitr.detail)") }
        #expect(report.metrics.pitrRecoverable == (c.status == .ok || pitr.detail.contains("not beyond")))
    }

    struct ShortCase: Sendable, CustomTestStringConvertible {
        let name: String
        let segment: UInt64
        let age: Double
        let lastArchived: String?
        let mayBeCopying: Bool
        var testDescription: String { name }
    }

    @Test("a short segment is damage, unless it is the newest, unreported and a few seconds old", arguments: [
        ShortCase(name: "newest, new, not reported archived", segment: 6, age: 5, lastArchived: "000000010000000000000005", mayBeCopying: true),
        ShortCase(name: "newest, new, offline", segment: 6, age: 5, lastArchived: nil, mayBeCopying: true),
        ShortCase(name: "newest, new, but reported archived", segment: 6, age: 5, lastArchived: "000000010000000000000006", mayBeCopying: false),
        ShortCase(name: "newest, old", segment: 6, age: 3600, lastArchived: nil, mayBeCopying: false),
        ShortCase(name: "in the middle, new", segment: 3, age: 5, lastArchived: nil, mayBeCopying: false),
    ])
    func shortSegments(_ c: ShortCase) throws {
        let name = WalGeometry.standard.fileName(timeline: 1, segment: c.segment)
        let entries = Self.segs(1, 1...6).filter { $0 != name }.map { WalArchiveEntry(fileName: $0, size: 16 << 20, modified: 0) }
            + [WalArchiveEntry(fileName: name, size: 5000, modified: 10_000 - c.age)]
        let listing = WalArchiveListing(directory: "/archive", entries: entries)
        let a = WalArchiveAnalysis.analyze(listing, WalArchiveQuery(geometry: .standard, lastArchived: c.lastArchived, now: 10_000))
        #expect(a.wrongSize.map(\.name) == [name] && a.wrongSize.first?.recent == c.mayBeCopying)
        #expect(a.damaged.map(\.name) == (c.mayBeCopying ? [] : [name]))
        #expect(a.gaps.isEmpty)
        var facts = Self.facts(archiver: ArchiverStats(archivedCount: 6, lastArchivedWAL: c.lastArchived, lastArchivedAge: 1))
        facts.position = .value(WalPosition(lsn: WalLSN("0/7000100")!, timeline: 1, fileName: "000000010000000000000007"))
        let report = WalStatusEvaluator.evaluate(WalStatusInput(
            server: c.lastArchived == nil ? .offline : .connected(facts), archive: .listing(listing), now: 10_000))
        let sizes = try #require(report.check("archive-sizes"))
        #expect(sizes.status == (c.mayBeCopying ? .warning : .critical) && sizes.detail.contains("\(name) (short: 5000 bytes)"))
        #expect(sizes.detail.contains("6 segment files: 5 of 16MB"))
        if !c.mayBeCopying {
            let gaps = try #require(report.check("archive-gaps"))
            #expect(gaps.status == .critical && gaps.detail.contains("\(name) (5000 of 16777216 bytes)"))
        }
    }

    @Test("--switch refused: the message names the GRANT, with the role quoted")
    func switchDenied() {
        let text = WalServerProbe.switchDenied(role: "Mon Role", monitor: true)
        #expect(text.contains(#"GRANT EXECUTE ON FUNCTION pg_switch_wal() TO "Mon Role""#))
        #expect(text.contains("pg_monitor does not include it"))
        #expect(!WalServerProbe.switchDenied(role: "plain", monitor: false).contains("pg_monitor"))
    }

    // MARK: - Real clusters with archive_mode on

    /// A throwaway cluster archiving with `cp` into `<baseDir>/archive` (or running
    /// `command` instead), with a pg_monitor role `mon`. archive_command runs in the
    /// data folder, so `../archive` is that folder, known before the cluster is.
    static func archivingCluster(_ major: Int, command: String? = nil) throws -> (TestCluster, String) {
        let cmd = command ?? "test ! -f ../archive/%f && cp %p ../archive/%f"
        let cluster = try TestCluster(major: major, settings: [
            "wal_level": "replica", "archive_mode": "on", "archive_timeout": "0",
            "archive_command": SQL.literal(cmd),
        ], name: "pgvault-wal")
        let archive = cluster.baseDir + "/archive"
        do {
            // Before any segment is complete, so before the archiver runs the command.
            try cluster.runAsServerUser(["/bin/mkdir", "-p", archive])
            try PGConnection(conninfo: cluster.conninfo()).execute("CREATE ROLE mon LOGIN IN ROLE pg_monitor")
        } catch {
            cluster.destroy()
            throw error
        }
        return (cluster, archive)
    }

    /// Writes something and completes the segment; returns its name.
    /// A real `pg_basebackup` of `cluster` into its folder's `base`; returns that path.
    static func baseBackup(_ cluster: TestCluster, label: String) throws -> String {
        let base = cluster.baseDir + "/base"
        try cluster.runAsServerUser([
            "\(cluster.binDir)/pg_basebackup", "-h", cluster.socketDir, "-p", "\(cluster.port)", "-U", "postgres",
            "-D", base, "-c", "fast", "-l", label, "--no-sync",
        ])
        return base
    }

    @discardableResult
    static func switchSegment(_ conn: PGConnection) throws -> String {
        try conn.execute("CREATE TABLE IF NOT EXISTS wal_filler (n int); INSERT INTO wal_filler VALUES (1)")
        return try #require(try conn.query("SELECT pg_walfile_name(pg_switch_wal())").scalar)
    }

    /// A segment wholly copied into the archive (archive_command's cp creates
    /// the file before it has written it, so existing is not enough).
    static func archived(_ path: String) -> Bool {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0) == 16 << 20
    }

    static func waitUntil(_ seconds: Double = 10, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    static func options(_ cluster: TestCluster, user: String = "postgres", archive: String? = nil) -> WalStatusOptions {
        var o = WalStatusOptions(conninfo: cluster.conninfo(user: user))
        o.archiveDir = archive
        o.switchTimeout = 20
        return o
    }

    /// Runs blocking set-up (initdb, libpq, polling) on a thread of its own, so the
    /// tests running beside it keep the cooperative pool.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Blocking.run("wal-status test", body)
    }

    @Test("healthy archiving: 0, as superuser and as pg_monitor; --switch sees the new segment arrive",
          arguments: TestServers.matrix)
    func healthy(major: Int) async throws {
        let (cluster, archive, before) = try await Self.blocking {
            let (cluster, archive) = try Self.archivingCluster(major)
            let conn = try PGConnection(conninfo: cluster.conninfo())
            let first = try Self.switchSegment(conn)
            _ = try Self.waitUntil { Self.archived(archive + "/" + first) }
            try conn.execute("CREATE ROLE plain LOGIN")
            return (cluster, archive, Set(try FileManager.default.contentsOfDirectory(atPath: archive)))
        }
        defer { cluster.destroy() }
        #expect(before.count == 1)

        var o = Self.options(cluster, archive: archive)
        o.forceSwitch = true
        o.thresholds = WalThresholds(maxAge: 900, maxBacklog: 10)
        let report = await WalStatusRunner.run(o)
        // Archiving works, but no base backup was ever taken: nothing to recover from.
        #expect(report.exitCode == 2, "\(report.table())")
        #expect(report.checks.filter { $0.status != .ok }.map(\.name) == ["pitr"], "\(report.table())")
        #expect(report.check("pitr")?.detail.contains("no base backup in \(archive)") == true)
        #expect(report.metrics.pitrBaseBackups == 0 && report.metrics.pitrRecoverable == false)
        let sw = try #require(report.check("switch"))
        #expect(sw.status == .ok && sw.data["archived"] == .bool(true))
        guard case .string(let segment)? = sw.data["segment"] else { Issue.record("no segment"); return }
        #expect(!before.contains(segment))
        #expect(FileManager.default.fileExists(atPath: archive + "/" + segment))
        #expect(report.check("archive-gaps")?.status == .ok)
        #expect(report.metrics.archiveSegments == 2)

        // pg_monitor: every check but --switch.
        let mon = await WalStatusRunner.run(Self.options(cluster, user: "mon"))
        #expect(mon.exitCode == 0, "\(mon.table())")
        #expect(mon.check("connection")?.detail.contains("pg_monitor") == true)
        #expect(mon.check("backlog")?.data["readyFiles"] == .int(0))
        var monSwitch = Self.options(cluster, user: "mon")
        monSwitch.forceSwitch = true
        let denied = await WalStatusRunner.run(monSwitch)
        #expect(denied.exitCode == 1)
        #expect(denied.check("switch")?.detail.contains(#"GRANT EXECUTE ON FUNCTION pg_switch_wal() TO "mon""#) == true)
        #expect(denied.check("switch")?.detail.contains("pg_monitor does not include it") == true)

        // A role with neither: the .ready listing is skipped with the reason, the rest runs.
        let plain = await WalStatusRunner.run(Self.options(cluster, user: "plain"))
        #expect(plain.exitCode == 0, "\(plain.table())")
        #expect(plain.check("backlog")?.detail.contains("pg_ls_archive_statusdir() needs pg_monitor") == true)
    }

    @Test("a failing archive_command: 2, naming the failing segment", arguments: TestServers.matrix)
    func failing(major: Int) async throws {
        let (cluster, segment, failed) = try await Self.blocking {
            let (cluster, _) = try Self.archivingCluster(major, command: "exit 1")
            let conn = try PGConnection(conninfo: cluster.conninfo())
            let segment = try Self.switchSegment(conn)
            let failed = try Self.waitUntil { try conn.query("SELECT failed_count > 0 FROM pg_stat_archiver").scalar == "t" }
            return (cluster, segment, failed)
        }
        defer { cluster.destroy() }
        #expect(failed)
        let report = await WalStatusRunner.run(Self.options(cluster, user: "mon"))
        #expect(report.exitCode == 2, "\(report.table())")
        let archiver = try #require(report.check("archiver"))
        #expect(archiver.status == .critical)
        #expect(archiver.detail.contains(segment))
        #expect(archiver.data["segment"] == .string(segment))
        #expect(report.summary.contains(segment))
        #expect(report.metrics.failing == true)
        #expect((report.metrics.backlogSegments ?? 0) >= 1)
    }

    @Test("a segment removed from the archive folder is a gap, by name; --since-backup a real backup")
    func gapByName() async throws {
        let (cluster, archive, names) = try await Self.blocking {
            let (cluster, archive) = try Self.archivingCluster(TestServers.newest)
            let conn = try PGConnection(conninfo: cluster.conninfo())
            var names: [String] = []
            for _ in 0..<3 { names.append(try Self.switchSegment(conn)) }
            _ = try Self.waitUntil { names.allSatisfy { Self.archived(archive + "/" + $0) } }
            return (cluster, archive, names)
        }
        defer { cluster.destroy() }

        let removed = names[1]
        try FileManager.default.removeItem(atPath: archive + "/" + removed)
        let report = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(report.exitCode == 2)
        let gaps = try #require(report.check("archive-gaps"))
        #expect(gaps.status == .critical && gaps.detail.contains(removed))
        #expect(gaps.data["missingSegments"] == .array([.string(removed)]))
        #expect(report.metrics.archiveGaps == 1)

        // Offline, the same gap, with the segment size taken from the files.
        var offline = WalStatusOptions(conninfo: "")
        offline.offline = true
        offline.archiveDir = archive
        let o = await WalStatusRunner.run(offline)
        #expect(o.exitCode == 2 && o.check("archive-gaps")?.detail.contains(removed) == true)

        // A pgvault backup is logical: the CLI refuses it as a start for recovery.
        let backup = cluster.baseDir + "/chat.tar"
        _ = try await BackupEngine.run(BackupOptions(conninfo: cluster.conninfo(), output: backup, form: .file))
        let binary = try Shell.pgvault()
        let refused = try await Self.blocking {
            try Shell.capture([binary, "wal-status", "--offline", "--archive-dir", archive, "--since-backup", backup])
        }
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("is a pgvault backup: a logical copy"), "\(refused.stderr)")
        #expect(refused.stderr.contains("physical base backup (pg_basebackup)"), "\(refused.stderr)")
    }

    @Test("pitr from a real pg_basebackup: the window; a short segment and a gap named; compressed segments count",
          arguments: TestServers.matrix)
    func pitrFromBaseBackup(major: Int) async throws {
        let (cluster, archive, base, names) = try await Self.blocking {
            let (cluster, archive) = try Self.archivingCluster(major)
            do {
                let conn = try PGConnection(conninfo: cluster.conninfo())
                try Self.switchSegment(conn)
                let base = try Self.baseBackup(cluster, label: "pgvault nightly")
                var names: [String] = []
                for _ in 0..<4 { names.append(try Self.switchSegment(conn)) }
                let found = try Self.waitUntil(20) {
                    let files = try FileManager.default.contentsOfDirectory(atPath: archive)
                    return names.allSatisfy { Self.archived(archive + "/" + $0) } && files.contains { $0.hasSuffix(".backup") }
                }
                guard found else { throw HarnessError("the segments or the .backup file were not archived in time") }
                return (cluster, archive, base, names)
            } catch {
                cluster.destroy()
                throw error
            }
        }
        defer { cluster.destroy() }

        let report = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(report.exitCode == 0, "\(report.table())")
        let pitr = try #require(report.check("pitr"))
        #expect(pitr.status == .ok && pitr.detail.contains("\"pgvault nightly\""), "\(pitr.detail)")
        #expect(pitr.data["windowEndSegment"] == .string(names.last!), "\(pitr.detail)")
        #expect(report.metrics.pitrBaseBackups == 1 && report.metrics.pitrRecoverable == true)
        #expect((report.metrics.pitrWindowStartSeconds ?? 0) > 1_700_000_000)
        #expect((report.metrics.pitrWindowEndSeconds ?? 0) >= (report.metrics.pitrWindowStartSeconds ?? .infinity) - 1)
        #expect(report.prometheus().contains("\npgvault_wal_pitr_recoverable 1\n"))

        // Named with --base-backup: the folder pg_basebackup wrote.
        var named = Self.options(cluster, user: "mon", archive: archive)
        named.baseBackup = base
        let fromFolder = await WalStatusRunner.run(named)
        #expect(fromFolder.check("pitr")?.status == .ok, "\(fromFolder.table())")
        #expect(fromFolder.check("pitr")?.detail.contains("(\(base))") == true)
        #expect(fromFolder.check("pitr")?.data["windowEndSegment"] == .string(names.last!))
        // The stop time comes from the archived .backup file of the same backup.
        #expect(fromFolder.metrics.pitrWindowStartSeconds == report.metrics.pitrWindowStartSeconds)

        // A compressed segment is a segment: still contiguous, not of the wrong size.
        try await Self.blocking {
            try Shell.run(["/usr/bin/gzip", archive + "/" + names[0]])
            try Shell.run(["/usr/bin/zstd", "-q", "--rm", archive + "/" + names[1]])
        }
        let compressed = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(compressed.exitCode == 0, "\(compressed.table())")
        #expect(compressed.check("archive-sizes")?.detail.contains("2 compressed") == true)

        // A half-copied segment: CRITICAL, by name, and the window ends before it.
        let short = archive + "/" + names[2]
        let whole = try Data(contentsOf: URL(fileURLWithPath: short))
        try whole.prefix(5000).write(to: URL(fileURLWithPath: short))
        let cut = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(cut.exitCode == 2)
        let cutPitr = try #require(cut.check("pitr"))
        #expect(cutPitr.status == .critical && cutPitr.detail.contains("\(names[2]) is short: 5000 of 16777216 bytes"), "\(cutPitr.detail)")
        #expect(cutPitr.data["windowEndSegment"] == .string(names[1] + ".zst"))
        #expect(cut.check("archive-sizes")?.status == .critical && cut.check("archive-sizes")?.detail.contains(names[2]) == true)
        #expect(cut.check("archive-gaps")?.status == .critical && cut.check("archive-gaps")?.detail.contains(names[2]) == true)

        // The same segment missing: a gap, by name.
        try FileManager.default.removeItem(atPath: short)
        let gap = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(gap.check("pitr")?.status == .critical)
        #expect(gap.check("pitr")?.detail.contains("\(names[2]) is missing") == true, "\(gap.table())")
    }

    @Test("after a promotion: timeline 2 follows its history file; without it, CRITICAL")
    func promotion() async throws {
        let (cluster, archive, history) = try await Self.blocking {
            let (cluster, archive) = try Self.archivingCluster(TestServers.newest)
            do {
                var names: [String] = []
                let conn = try PGConnection(conninfo: cluster.conninfo())
                _ = try Self.baseBackup(cluster, label: "before the promotion")
                for _ in 0..<2 { names.append(try Self.switchSegment(conn)) }
                _ = try Self.waitUntil { names.allSatisfy { Self.archived(archive + "/" + $0) } }
                // Restart as a standby replaying from the archive, then promote: timeline 2.
                try cluster.stop()
                let conf = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.dataDir + "/postgresql.auto.conf"))
                conf.seekToEndOfFile()
                conf.write(Data("\nrestore_command = 'cp ../archive/%f %p'\n".utf8))
                try conf.close()
                try cluster.runAsServerUser(["/usr/bin/touch", cluster.dataDir + "/standby.signal"])
                try cluster.start()
                try cluster.runAsServerUser(["\(cluster.binDir)/pg_ctl", "-D", cluster.dataDir, "-w", "-t", "30", "promote"])
                let promoted = try PGConnection(conninfo: cluster.conninfo())
                let onTwo = try Self.switchSegment(promoted)
                let history = archive + "/00000002.history"
                _ = try Self.waitUntil {
                    FileManager.default.fileExists(atPath: history) && Self.archived(archive + "/" + onTwo)
                }
                return (cluster, archive, history)
            } catch {
                cluster.destroy()
                throw error
            }
        }
        defer { cluster.destroy() }

        let report = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(report.exitCode == 0, "\(report.table())")
        #expect(report.check("archive-history")?.detail.contains("path 1 → 2") == true)
        // Recovery from the backup on timeline 1 follows the switch to the newest segment on timeline 2.
        let pitr = try #require(report.check("pitr"))
        #expect(pitr.status == .ok && pitr.detail.contains("\"before the promotion\""), "\(pitr.detail)")
        guard case .string(let end)? = pitr.data["windowEndSegment"] else { Issue.record("no window end: \(pitr.detail)"); return }
        #expect(end.hasPrefix("00000002"), "\(pitr.detail)")
        #expect(report.check("archive-gaps")?.status == .ok)

        try FileManager.default.removeItem(atPath: history)
        let missing = await WalStatusRunner.run(Self.options(cluster, user: "mon", archive: archive))
        #expect(missing.exitCode == 2)
        #expect(missing.check("archive-history")?.status == .critical)
        #expect(missing.check("archive-history")?.detail.contains("00000002.history") == true)
        let cut = try #require(missing.check("pitr"))
        #expect(cut.status == .critical && cut.detail.contains("00000002.history is missing"), "\(cut.detail)")
        guard case .string(let cutEnd)? = cut.data["windowEndSegment"] else { Issue.record("no window end: \(cut.detail)"); return }
        #expect(cutEnd.hasPrefix("00000001"), "\(cut.detail)")
    }

    @Test("archive_mode off: 2, with the fix in the message")
    func archiveModeOff() async throws {
        let server = try await Self.blocking { try TestServers.server(TestServers.newest) }
        var o = WalStatusOptions(conninfo: server.conninfo(database: "postgres"))
        o.forceSwitch = true  // must not wait for a segment that will never be archived
        let report = await WalStatusRunner.run(o)
        #expect(report.exitCode == 2)
        let settings = try #require(report.check("settings"))
        #expect(settings.status == .critical)
        #expect(settings.detail.contains("ALTER SYSTEM SET archive_mode = on; ALTER SYSTEM SET archive_command = '"))
        #expect(settings.detail.contains("restart"))
        #expect(report.check("switch")?.detail.contains("archive_mode is off") == true)
    }

    @Test("no server: 3 (UNKNOWN)")
    func unreachable() async {
        var o = WalStatusOptions(conninfo: "host=/nonexistent-pgvault-socket port=5999 dbname=postgres")
        o.connectTimeout = 2
        let report = await WalStatusRunner.run(o)
        #expect(report.exitCode == 3)
        #expect(report.check("connection")?.detail.contains("could not connect") == true)
    }
}
