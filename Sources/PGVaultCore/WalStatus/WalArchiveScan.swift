import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One file of a WAL archive folder.
public struct WalArchiveEntry: Sendable {
    public let fileName: String
    /// Nil when the name is none of PostgreSQL's archive files.
    public let name: WalArchiveName?
    public let size: UInt64
    /// Seconds since the epoch.
    public let modified: Double

    public init(fileName: String, size: UInt64, modified: Double = 0) {
        self.fileName = fileName
        name = WalArchiveName(fileName)
        self.size = size
        self.modified = modified
    }
}

/// The files of an archive folder, and the parsed contents of its history files.
public struct WalArchiveListing: Sendable {
    public enum HistoryContent: Sendable, Equatable {
        case parsed([TimelineHistoryEntry])
        case unreadable(String)
    }

    /// Why an archive folder could not be listed: not there (an archive
    /// error), or there but not readable by this user (an I/O error, which
    /// wal-status reports as a skipped check).
    public static func missing(_ dir: String) -> PGVaultError { .archive("\(dir) does not exist") }
    public static func notADirectory(_ dir: String) -> PGVaultError { .archive("\(dir) is not a folder") }
    public static func unreadable(_ dir: String, reason: String) -> PGVaultError { .io("cannot list \(dir): \(reason)") }

    public let directory: String
    public var entries: [WalArchiveEntry]
    public var histories: [UInt32: HistoryContent]
    /// The base backups the `.backup` history files describe, by file name; a
    /// failure says why one could not be read.
    public var baseBackups: [String: Result<WalBaseBackup, PGVaultError>]

    public init(directory: String, entries: [WalArchiveEntry], histories: [UInt32: HistoryContent] = [:],
                baseBackups: [String: Result<WalBaseBackup, PGVaultError>] = [:]) {
        self.directory = directory
        self.entries = entries
        self.histories = histories
        self.baseBackups = baseBackups
    }

    /// Lists `directory` (names and sizes only; segments are never opened) and
    /// reads its uncompressed `.history` and `.backup` files. Blocking: call it from a
    /// ``PGClient/Blocking`` thread.
    public static func read(directory: String) throws -> WalArchiveListing {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw missing(directory)
        }
        guard isDir.boolValue else { throw notADirectory(directory) }
        guard access(directory, R_OK | X_OK) == 0 else {
            throw unreadable(directory, reason: String(cString: strerror(errno)))
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw unreadable(directory, reason: "\(error.localizedDescription)")
        }
        var entries: [WalArchiveEntry] = []
        var histories: [UInt32: HistoryContent] = [:]
        var baseBackups: [String: Result<WalBaseBackup, PGVaultError>] = [:]
        entries.reserveCapacity(names.count)
        for fileName in names {
            let path = directory + "/" + fileName
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            #if canImport(Darwin)
            let mtime = Double(st.st_mtimespec.tv_sec)
            #else
            let mtime = Double(st.st_mtim.tv_sec)
            #endif
            let entry = WalArchiveEntry(fileName: fileName, size: UInt64(st.st_size), modified: mtime)
            entries.append(entry)
            if case .history(let tli)? = entry.name?.kind {
                if entry.name?.compression != nil {
                    // A plain one, if both are present, wins.
                    if histories[tli] == nil { histories[tli] = .unreadable("\(fileName) is compressed; not read") }
                } else if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    histories[tli] = TimelineHistoryEntry.parse(text).map { .parsed($0) }
                        ?? .unreadable("\(fileName) is not a timeline history file")
                } else {
                    histories[tli] = .unreadable("cannot read \(fileName)")
                }
            }
            if case .backupLabel? = entry.name?.kind {
                if entry.name?.compression != nil {
                    baseBackups[fileName] = .failure(PGVaultError.archive("\(fileName) is compressed; not read"))
                } else if entry.size > 1 << 20 {
                    baseBackups[fileName] = .failure(PGVaultError.archive("\(fileName) is \(entry.size) bytes: not a backup history file"))
                } else if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    baseBackups[fileName] = WalBaseBackup.parseLabel(text, source: fileName).map { .success($0) }
                        ?? .failure(PGVaultError.archive("\(fileName) has no START WAL LOCATION: not a backup history file"))
                } else {
                    baseBackups[fileName] = .failure(PGVaultError.archive("cannot read \(fileName)"))
                }
            }
        }
        return WalArchiveListing(directory: directory, entries: entries, histories: histories, baseBackups: baseBackups)
    }

    /// True when the folder holds `segmentName`, plain or compressed. Blocking.
    public static func contains(directory: String, segmentName: String) -> Bool {
        ([""] + WalArchiveName.compressionSuffixes.map { "." + $0 }).contains {
            FileManager.default.fileExists(atPath: directory + "/" + segmentName + $0)
        }
    }
}

/// What to check an archive listing against.
public struct WalArchiveQuery: Sendable {
    /// The server's segment size; nil to infer it from the files.
    public var geometry: WalGeometry?
    /// The timeline recovery would aim at: the server's; nil for the newest in the archive.
    public var targetTimeline: UInt32?
    /// Check from this location (a backup's start); nil for the oldest segment present.
    public var start: WalLSN?
    /// The timeline `start` is on, when known.
    public var startTimeline: UInt32?
    /// Where `start` came from, for messages.
    public var startSource: String?
    /// The last segment the server says it archived.
    public var lastArchived: String?
    /// Now, seconds since the epoch (for "recently written").
    public var now: Double
    /// A wrong-size segment younger than this may still be being copied.
    public var recentSeconds: Double = 60
}

/// The result of checking an archive folder: contiguity, history files, sizes.
public struct WalArchiveAnalysis: Sendable {
    public struct Gap: Sendable, Equatable {
        public let first: String
        public let last: String
        public let count: UInt64
    }

    public struct WrongSize: Sendable, Equatable {
        public let name: String
        public let size: UInt64
        /// The newest segment of the folder, not yet reported archived and modified
        /// within the last minute: maybe still being copied. Any other is damage.
        public let recent: Bool
        /// Shorter than a segment (a copy cut short), rather than longer.
        public var short: Bool = true
    }

    public struct MissingHistory: Sendable, Equatable {
        public let timeline: UInt32
        /// Recovery from the start point cannot reach the target timeline without it.
        public let required: Bool
        public var fileName: String { WalArchiveName.historyFileName(timeline: timeline) }
    }

    public var geometry: WalGeometry
    /// "server", "file sizes" or "default".
    public var geometrySource: String
    public var targetTimeline: UInt32
    /// The timelines on the way to the target, oldest first; nil when the
    /// target's history file is missing (then any older timeline is accepted).
    public var path: [UInt32]?
    public var start: String?
    public var startSegment: UInt64?
    public var startSource: String
    public var end: String?
    public var endSegment: UInt64?
    /// Segments present between start and end (inclusive).
    public var segmentsInRange: UInt64 = 0
    public var gaps: [Gap] = []
    public var missingSegments: UInt64 { gaps.reduce(0) { $0 + $1.count } }
    /// Segments between start and end present only at the wrong size: recovery
    /// stops at them as at a missing one.
    public var damaged: [WrongSize] = []
    /// The last segment recovery from the start reaches without a gap or a damaged
    /// segment; nil when the start's own segment is missing or damaged.
    public var contiguousThrough: UInt64?
    /// The first missing or damaged segment after the start, by name.
    public var firstBreak: String?
    /// Up to `missingListLimit` missing segment names, in order.
    public var missingNames: [String] = []
    public static let missingListLimit = 1000
    public var wrongSize: [WrongSize] = []
    public var missingHistory: [MissingHistory] = []
    public var unreadableHistory: [String] = []
    public var historyFiles: [String] = []
    public var segmentFiles = 0
    public var compressedSegments = 0
    public var partials: [String] = []
    public var backupLabels: [String] = []
    public var unrecognized: [String] = []
    /// Segment names that cannot exist at this segment size.
    public var impossibleNames: [String] = []

    /// Checks `listing` against `query`. Pure: no I/O.
    public static func analyze(_ listing: WalArchiveListing, _ query: WalArchiveQuery) -> WalArchiveAnalysis {
        var (geometry, geometrySource) = (query.geometry, "server")
        if geometry == nil { (geometry, geometrySource) = inferGeometry(listing.entries) }
        let geo = geometry ?? .standard

        var result = WalArchiveAnalysis(
            geometry: geo, geometrySource: geometrySource, targetTimeline: 1, path: nil,
            startSource: query.startSource ?? "the oldest segment present")

        // Sort the files by kind.
        var byTimeline: [UInt64: [UInt32]] = [:]  // segno -> timelines present at the right size
        var wrongByTimeline: [UInt64: [(UInt32, WalArchiveEntry)]] = [:]
        var timelinesSeen = Set<UInt32>()
        for entry in listing.entries {
            guard let name = entry.name else {
                result.unrecognized.append(entry.fileName)
                continue
            }
            switch name.kind {
            case .segment:
                guard let id = geo.segmentID(fromName: entry.fileName.prefix(24)) else {
                    result.impossibleNames.append(entry.fileName)
                    continue
                }
                timelinesSeen.insert(id.timeline)
                result.segmentFiles += 1
                if name.compression != nil { result.compressedSegments += 1 }
                // A compressed segment's size says nothing, except when it is empty.
                let wrong = name.compression != nil ? entry.size == 0 : entry.size != geo.segmentSize
                if wrong {
                    wrongByTimeline[id.segment, default: []].append((id.timeline, entry))
                } else {
                    byTimeline[id.segment, default: []].append(id.timeline)
                }
            case .partial: result.partials.append(entry.fileName)
            case .backupLabel: result.backupLabels.append(entry.fileName)
            case .history(let tli):
                result.historyFiles.append(entry.fileName)
                timelinesSeen.insert(tli)
            }
        }
        // A wrong-size file is damage, unless it is the newest segment, not yet
        // reported archived, written in the last minute: then it may be a copy under way.
        let newest = (byTimeline.keys.max().map { [$0] } ?? []) + (wrongByTimeline.keys.max().map { [$0] } ?? [])
        let reported = query.lastArchived.flatMap { geo.segmentID(fromName: $0) }?.segment
        for (segno, files) in wrongByTimeline {
            for (_, entry) in files {
                let inFlight = segno == newest.max() && reported.map { segno > $0 } != false
                    && query.now - entry.modified < query.recentSeconds
                result.wrongSize.append(WrongSize(
                    name: entry.fileName, size: entry.size, recent: inFlight, short: entry.size < geo.segmentSize))
            }
        }
        result.wrongSize.sort { $0.name < $1.name }
        result.partials.sort()
        result.backupLabels.sort()
        result.historyFiles.sort()
        result.unrecognized.sort()

        // The path of timelines to the target.
        let target = query.targetTimeline ?? timelinesSeen.max() ?? 1
        result.targetTimeline = target
        var path: TimelinePath?
        if target == 1 {
            path = TimelinePath(target: 1, history: [], geometry: geo)
        } else if case .parsed(let entries)? = listing.histories[target] {
            path = TimelinePath(target: target, history: entries, geometry: geo)
        } else if case .unreadable(let why)? = listing.histories[target] {
            result.unreadableHistory.append(why)
        }
        result.path = path?.timelines
        func serves(_ tli: UInt32, _ segno: UInt64) -> Bool {
            if let path { return path.timelines(forSegment: segno).contains(tli) }
            return tli <= target
        }
        func nameFor(_ segno: UInt64) -> String {
            let tli = path?.timeline(forSegment: segno)
                ?? byTimeline[segno]?.filter({ $0 <= target }).max() ?? target
            return geo.fileName(timeline: tli, segment: segno)
        }

        // Segments recovery could use, and the range to check.
        let usable = byTimeline.filter { segno, tlis in tlis.contains { serves($0, segno) } }.keys.sorted()
        let lastArchived = query.lastArchived.flatMap { geo.segmentID(fromName: $0) }
            .flatMap { serves($0.timeline, $0.segment) ? $0.segment : nil }
        // A damaged file shows archiving reached its segment; one maybe still being copied does not.
        let copying = Set(result.wrongSize.filter(\.recent).map(\.name))
        let lastDamaged = wrongByTimeline.filter { segno, files in
            files.contains { !copying.contains($0.1.fileName) && serves($0.0, segno) }
        }.keys.max()
        let endSegno = [usable.last, lastArchived, lastDamaged].compactMap { $0 }.max()
        let startSegno = query.start.map(geo.segmentNumber(containing:)) ?? usable.first ?? endSegno
        (result.startSegment, result.endSegment) = (startSegno, endSegno)
        result.start = startSegno.map { segno in
            if path == nil, query.start != nil, let tli = query.startTimeline { return geo.fileName(timeline: tli, segment: segno) }
            return nameFor(segno)
        }
        result.end = endSegno.map(nameFor)

        if let startSegno, let endSegno, startSegno <= endSegno {
            var expected = startSegno
            var broken: UInt64?
            func addGap(_ first: UInt64, _ last: UInt64) {
                result.gaps.append(Gap(first: nameFor(first), last: nameFor(last), count: last - first + 1))
                var n = first
                while n <= last && result.missingNames.count < missingListLimit {
                    result.missingNames.append(nameFor(n))
                    n += 1
                }
            }
            // The wrong-size files recovery would have to read, where no good copy exists.
            let intact = Set(usable)
            let damagedHere = wrongByTimeline.compactMapValues { files -> [(UInt32, WalArchiveEntry)]? in
                let hit = files.filter { !copying.contains($0.1.fileName) }
                return hit.isEmpty ? nil : hit
            }.filter { segno, files in
                segno >= startSegno && segno <= endSegno && !intact.contains(segno) && files.contains { serves($0.0, segno) }
            }
            let damagedNames = Set(damagedHere.flatMap { segno, files in files.filter { serves($0.0, segno) }.map(\.1.fileName) })
            result.damaged = result.wrongSize.filter { damagedNames.contains($0.name) }
            let present = intact.union(damagedHere.keys)
            for segno in present.sorted() where segno >= startSegno && segno <= endSegno {
                if segno > expected {
                    addGap(expected, segno - 1)
                    broken = broken ?? expected
                }
                if damagedHere[segno] != nil {
                    broken = broken ?? segno
                } else {
                    result.segmentsInRange += 1
                }
                expected = segno + 1
            }
            if expected <= endSegno {
                addGap(expected, endSegno)
                broken = broken ?? expected
            }
            if let broken {
                result.contiguousThrough = broken > startSegno ? broken - 1 : nil
                result.firstBreak = damagedHere[broken].flatMap { $0.first { serves($0.0, broken) }?.1.fileName } ?? nameFor(broken)
            } else {
                result.contiguousThrough = endSegno
            }
        }

        // History files: every timeline after the start's on the way to the target.
        let startTimeline: UInt32 = {
            if query.start != nil, let tli = query.startTimeline { return tli }
            guard let startSegno else { return target }
            if let path { return path.timelines(forSegment: startSegno).last ?? target }
            return byTimeline[startSegno]?.filter { $0 <= target }.min() ?? target
        }()
        var needed = Set(path?.timelines ?? Array(timelinesSeen.filter { $0 <= target }))
        needed.insert(target)
        for tli in needed.sorted() where tli > 1 && listing.histories[tli] == nil {
            result.missingHistory.append(MissingHistory(timeline: tli, required: tli > startTimeline))
        }
        for (tli, content) in listing.histories.sorted(by: { $0.key < $1.key }) where tli != target {
            if case .unreadable(let why) = content { result.unreadableHistory.append(why) }
        }
        return result
    }

    /// The segment size most uncompressed segments have, if it is a valid one.
    static func inferGeometry(_ entries: [WalArchiveEntry]) -> (WalGeometry?, String) {
        var counts: [UInt64: Int] = [:]
        for entry in entries {
            if let name = entry.name, case .segment = name.kind, name.compression == nil, WalGeometry.isValid(entry.size) {
                counts[entry.size, default: 0] += 1
            }
        }
        if let best = counts.max(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
            return (WalGeometry(segmentSize: best.key), "file sizes")
        }
        return (.standard, "default")
    }
}
