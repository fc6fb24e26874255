import Foundation

/// The question an archive is kept for: from which base backup can this cluster
/// be recovered, and up to when? Recovery restores a physical base backup and
/// replays WAL from its start; it is consistent once replay passes the backup's
/// stop location, and can go on to the first missing or damaged segment. Pure.
public struct WalRecoveryWindow: Sendable {
    /// The newest base backup whose own WAL (start to stop) is all in the archive.
    public var backup: WalBaseBackup?
    /// Newer base backups that cannot be used, each with the reason.
    public var unusable: [(backup: WalBaseBackup, reason: String)] = []
    /// The base backups considered.
    public var candidates = 0
    /// The last segment replay reaches, its file, and the LSN its end is.
    public var endSegment: String?
    public var endLSN: WalLSN?
    /// When that segment arrived in the archive (its file's mtime), seconds since the epoch.
    public var endTime: Double?
    /// What stops replay before the newest archived WAL: a missing or damaged
    /// segment, or a missing history file; nil when nothing does.
    public var breakReason: String?
    public var segments: UInt64 = 0

    /// Judges `candidates` (newest first is decided here) against the archive.
    public static func find(
        _ listing: WalArchiveListing, _ query: WalArchiveQuery, candidates: [WalBaseBackup]
    ) -> WalRecoveryWindow {
        var window = WalRecoveryWindow(candidates: candidates.count)
        let ordered = candidates.sorted { ($0.start, $0.stop ?? $0.start) > ($1.start, $1.stop ?? $1.start) }
        for backup in ordered {
            var q = query
            (q.start, q.startTimeline, q.startSource) = (backup.start, backup.startTimeline, backup.display)
            var a = WalArchiveAnalysis.analyze(listing, q)
            let geo = a.geometry
            let neededThrough = backup.stop.map(geo.segmentNumber(endingAt:)) ?? geo.segmentNumber(containing: backup.start)
            let missingHistory = a.missingHistory.first(where: \.required)
            if missingHistory != nil {
                // Without the history file replay stays on the backup's timeline: the window ends with it.
                q.targetTimeline = backup.startTimeline
                q.lastArchived = nil
                a = WalArchiveAnalysis.analyze(listing, q)
            }
            guard let through = a.contiguousThrough, through >= neededThrough else {
                let what = a.firstBreak.map { describe($0, a) } ?? "its WAL from \(backup.start) is not archived yet"
                window.unusable.append((backup, "its own WAL cannot be replayed: \(what)"))
                continue
            }
            window.backup = backup
            window.segments = through - (a.startSegment ?? through) + 1
            window.endLSN = geo.startLSN(ofSegment: through + 1)
            let wrong = Set(a.wrongSize.map(\.name))
            let file = listing.entries.filter { entry in
                guard let id = geo.segmentID(fromName: entry.fileName.prefix(24)), case .segment? = entry.name?.kind else { return false }
                return id.segment == through && id.timeline <= a.targetTimeline && !wrong.contains(entry.fileName)
            }.max { $0.fileName < $1.fileName }
            window.endSegment = file?.fileName
            window.endTime = file?.modified
            if let history = missingHistory {
                window.breakReason = "\(history.fileName) is missing: replay cannot follow the switch to timeline \(history.timeline)"
            } else if let name = a.firstBreak {
                window.breakReason = describe(name, a)
            }
            return window
        }
        return window
    }

    /// `000000010000000000000005 is missing` or `... is short: 5000 of 16777216 bytes`.
    static func describe(_ name: String, _ a: WalArchiveAnalysis) -> String {
        guard let d = a.damaged.first(where: { $0.name == name }) else { return "\(name) is missing" }
        return "\(name) is \(d.short ? "short" : "too long"): \(d.size) of \(a.geometry.segmentSize) bytes"
    }

    /// The `pitr` check: OK with the window, CRITICAL when there is no base backup
    /// to start from or the chain after it is broken (naming the segment).
    static func check(
        _ listing: WalArchiveListing, _ query: WalArchiveQuery,
        named: Result<WalBaseBackup, PGVaultError>?, _ m: inout WalMetrics
    ) -> WalCheck {
        var candidates: [WalBaseBackup] = []
        var notes: [String] = []
        switch named {
        case .failure(let error)?:
            return WalCheck("pitr", .unknown, "cannot tell from which base backup recovery could start: \(error)")
        case .success(var b)?:
            // A backup_label does not know where or when the backup ended; its .backup file does.
            if let twin = listing.baseBackups.values.compactMap({ try? $0.get() }).first(where: { $0.start == b.start }) {
                b = b.filling(from: twin)
            }
            candidates = [b]
        case nil:
            for (name, result) in listing.baseBackups.sorted(by: { $0.key < $1.key }) {
                switch result {
                case .success(let b): candidates.append(b)
                case .failure(let why): notes.append("\(name): \(why)")
                }
            }
        }
        m.pitrBaseBackups = Int64(candidates.count)
        let noteText = notes.isEmpty ? "" : " (not read: " + notes.joined(separator: "; ") + ")"
        guard !candidates.isEmpty else {
            m.pitrRecoverable = false
            return WalCheck(
                "pitr", .critical,
                "no base backup in \(listing.directory) (no .backup history file)\(noteText): point-in-time recovery "
                    + "has nothing to start from. Take one with pg_basebackup (e.g. pg_basebackup -D /srv/basebackup/$(date +%F) -c fast), "
                    + "or name one with --base-backup",
                data: ["baseBackups": .int(0)])
        }
        let w = find(listing, query, candidates: candidates)
        var data: [String: WalJSON] = ["baseBackups": .int(Int64(candidates.count))]
        if !w.unusable.isEmpty {
            data["unusable"] = .array(w.unusable.map { .object(["source": .string($0.backup.source), "reason": .string($0.reason)]) })
        }
        let skippedText = w.unusable.map { "\($0.backup.display) cannot be used: \($0.reason)" }.joined(separator: "; ")
        guard let b = w.backup else {
            m.pitrRecoverable = false
            return WalCheck(
                "pitr", .critical,
                "no base backup can be recovered from this archive: \(skippedText)\(noteText). Take a new base backup now",
                data: data)
        }
        m.pitrRecoverable = true
        m.pitrWindowStartSeconds = b.stopTime.flatMap(WalBaseBackup.epoch)
        m.pitrWindowEndSeconds = w.endTime
        data["backup"] = .object([
            "source": .string(b.source), "label": b.label.map(WalJSON.string) ?? .null,
            "startLSN": .string(b.start.description), "stopLSN": b.stop.map { .string($0.description) } ?? .null,
            "timeline": .int(Int64(b.startTimeline)), "startTime": b.startTime.map(WalJSON.string) ?? .null,
            "stopTime": b.stopTime.map(WalJSON.string) ?? .null,
        ])
        data["windowStart"] = b.stopTime.map(WalJSON.string) ?? .null
        data["windowStartLSN"] = .string((b.stop ?? b.start).description)
        data["windowEnd"] = w.endTime.map { .string(iso($0)) } ?? .null
        data["windowEndLSN"] = w.endLSN.map { .string($0.description) } ?? .null
        data["windowEndSegment"] = w.endSegment.map(WalJSON.string) ?? .null
        data["segments"] = .int(Int64(w.segments))
        let from = "from \(b.display), consistent at \(b.stop.map(\.description) ?? "?") (\(b.stopTime ?? "stop time unknown"))"
        let to = "up to \(w.endLSN?.description ?? "?") (end of \(w.endSegment ?? "?")"
            + (w.endTime.map { ", archived \(iso($0))" } ?? "") + ")"
        var text = "recoverable \(from) \(to)"
        if b.stop == nil { text += "; the backup_label does not say where the backup ended: its .backup file is not in the archive" }
        if !skippedText.isEmpty { text += "; newer: \(skippedText)" }
        if let why = w.breakReason {
            data["break"] = .string(why)
            return WalCheck("pitr", .critical, "\(text), not beyond: \(why)\(noteText)", data: data)
        }
        return WalCheck("pitr", .ok, "\(text): \(WalText.count(w.segments, "segment")) contiguous\(noteText)", data: data)
    }

    static func iso(_ epoch: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: epoch))
    }
}
