/// WAL locations, segment names and the other file names of a WAL archive, with
/// the arithmetic PostgreSQL uses (xlog_internal.h), so pgvault can name the
/// segment that holds an LSN and find what is missing from an archive.

/// A WAL location (LSN), shown by PostgreSQL as two hex halves: `0/1A2B3C4`.
public struct WalLSN: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// Parses `X/Y` (hex, each half at most 8 digits, any case); nil otherwise.
    public init?(_ text: String) {
        let parts = WalText.trim(text).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
              let hi = WalText.hex32(parts[0]), let lo = WalText.hex32(parts[1]) else { return nil }
        value = UInt64(hi) << 32 | UInt64(lo)
    }

    public var description: String {
        String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func < (a: WalLSN, b: WalLSN) -> Bool { a.value < b.value }
}

/// The size of a cluster's WAL segments (`wal_segment_size`, fixed at initdb) and
/// the naming that follows from it.
public struct WalGeometry: Sendable, Equatable {
    public static let defaultSegmentSize: UInt64 = 16 << 20
    public static let standard = WalGeometry(uncheckedSegmentSize: defaultSegmentSize)

    public let segmentSize: UInt64

    /// A power of two from 1 MB to 1 GB, as initdb allows; nil otherwise.
    public init?(segmentSize: UInt64) {
        guard Self.isValid(segmentSize) else { return nil }
        self.segmentSize = segmentSize
    }

    private init(uncheckedSegmentSize: UInt64) { segmentSize = uncheckedSegmentSize }

    public static func isValid(_ size: UInt64) -> Bool {
        size >= 1 << 20 && size <= 1 << 30 && size & (size - 1) == 0
    }

    /// Segments per "xlogid", the middle 8 hex digits of a name (0x100 for 16 MB).
    public var segmentsPerXLogID: UInt64 { 0x1_0000_0000 / segmentSize }

    /// The segment holding `lsn` (XLByteToSeg).
    public func segmentNumber(containing lsn: WalLSN) -> UInt64 { lsn.value / segmentSize }

    /// The segment holding the byte before `lsn` (XLByteToPrevSeg), the one
    /// `pg_walfile_name()` names for the end position `pg_switch_wal()` returns.
    public func segmentNumber(endingAt lsn: WalLSN) -> UInt64 { (max(lsn.value, 1) - 1) / segmentSize }

    public func startLSN(ofSegment segno: UInt64) -> WalLSN { WalLSN(segno &* segmentSize) }

    /// The 24-hex-digit file name, TTTTTTTTXXXXXXXXYYYYYYYY.
    public func fileName(timeline: UInt32, segment segno: UInt64) -> String {
        WalText.hex8(UInt64(timeline)) + WalText.hex8(segno / segmentsPerXLogID) + WalText.hex8(segno % segmentsPerXLogID)
    }

    public func fileName(_ id: WalSegmentID) -> String { fileName(timeline: id.timeline, segment: id.segment) }

    /// The timeline and segment number of a 24-hex-digit name, or nil when the name
    /// is not one, or names a segment that cannot exist at this segment size.
    public func segmentID(fromName name: some StringProtocol) -> WalSegmentID? {
        guard let raw = RawSegmentName(name), UInt64(raw.low) < segmentsPerXLogID else { return nil }
        return WalSegmentID(timeline: raw.timeline, segment: UInt64(raw.high) * segmentsPerXLogID + UInt64(raw.low))
    }

    /// `16MB`, `64MB`, `1GB`.
    public var display: String { WalText.bytes(segmentSize) }
}

/// One segment of one timeline.
public struct WalSegmentID: Sendable, Hashable, Comparable {
    public var timeline: UInt32
    public var segment: UInt64

    public init(timeline: UInt32, segment: UInt64) {
        self.timeline = timeline
        self.segment = segment
    }

    public static func < (a: WalSegmentID, b: WalSegmentID) -> Bool {
        (a.segment, a.timeline) < (b.segment, b.timeline)
    }
}

/// The three 8-digit parts of a segment name, before the segment size is known.
public struct RawSegmentName: Sendable, Hashable {
    public let timeline: UInt32
    public let high: UInt32
    public let low: UInt32

    public init?(_ name: some StringProtocol) {
        let u = Array(name.utf8)
        guard u.count == 24, u.allSatisfy(isUpperHex),
              let t = WalText.hex32(name.prefix(8)),
              let h = WalText.hex32(name.dropFirst(8).prefix(8)),
              let l = WalText.hex32(name.dropFirst(16)) else { return nil }
        timeline = t
        high = h
        low = l
    }
}

/// What a file in a WAL archive is, judged by its name alone.
public enum WalArchiveFileKind: Sendable, Equatable {
    /// A complete segment: `000000010000000000000003`.
    case segment(RawSegmentName)
    /// The last, incomplete segment of a timeline that was left at a promotion:
    /// `000000010000000000000003.partial`. Legitimate; not a complete segment.
    case partial(RawSegmentName)
    /// A backup history file written at the end of a base backup:
    /// `000000010000000000000002.00000028.backup`.
    case backupLabel(RawSegmentName, offset: UInt32)
    /// A timeline history file: `00000002.history`.
    case history(timeline: UInt32)
}

/// A file name of a WAL archive: its kind and the compression suffix it carries,
/// if any (`.gz`, `.zst`, `.lz4`, ... as archive_command wrappers write them).
public struct WalArchiveName: Sendable, Equatable {
    public static let compressionSuffixes: Set<String> = ["gz", "zst", "zstd", "lz4", "bz2", "xz", "br"]

    public let kind: WalArchiveFileKind
    public let compression: String?

    /// Nil for a name that is none of PostgreSQL's archive files (a temporary file
    /// of an archive_command, a README, a lower-case name PostgreSQL would not ask for).
    public init?(_ name: String) {
        var base = Substring(name)
        var compression: String?
        if let dot = base.lastIndex(of: "."), Self.compressionSuffixes.contains(String(base[base.index(after: dot)...])) {
            compression = String(base[base.index(after: dot)...])
            base = base[..<dot]
        }
        let parts = base.split(separator: ".", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            guard let raw = RawSegmentName(parts[0]) else { return nil }
            kind = .segment(raw)
        case 2 where parts[1] == "partial":
            guard let raw = RawSegmentName(parts[0]) else { return nil }
            kind = .partial(raw)
        case 2 where parts[1] == "history":
            guard parts[0].utf8.count == 8, parts[0].utf8.allSatisfy(isUpperHex),
                  let tli = WalText.hex32(parts[0]) else { return nil }
            kind = .history(timeline: tli)
        case 3 where parts[2] == "backup":
            guard let raw = RawSegmentName(parts[0]), parts[1].utf8.count == 8,
                  parts[1].utf8.allSatisfy(isUpperHex), let offset = WalText.hex32(parts[1]) else { return nil }
            kind = .backupLabel(raw, offset: offset)
        default:
            return nil
        }
        self.compression = compression
    }

    /// The history file name of a timeline: `00000002.history`.
    public static func historyFileName(timeline: UInt32) -> String { WalText.hex8(UInt64(timeline)) + ".history" }
}

/// One line of a timeline history file: timeline `parent` ended at `switchpoint`,
/// where the next timeline began.
public struct TimelineHistoryEntry: Sendable, Equatable {
    public let parent: UInt32
    public let switchpoint: WalLSN

    public init(parent: UInt32, switchpoint: WalLSN) {
        self.parent = parent
        self.switchpoint = switchpoint
    }

    /// Parses a `.history` file as PostgreSQL writes it
    /// (`1<TAB>0/3000060<TAB>reason`; `#` comments and blank lines are skipped).
    /// Nil when a line is not of that form or the timelines do not increase.
    public static func parse(_ text: String) -> [TimelineHistoryEntry]? {
        var entries: [TimelineHistoryEntry] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = WalText.trim(line)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 2, let tli = UInt32(fields[0]), let lsn = WalLSN(String(fields[1])) else { return nil }
            if let last = entries.last, tli <= last.parent { return nil }
            entries.append(TimelineHistoryEntry(parent: tli, switchpoint: lsn))
        }
        return entries
    }
}

/// Which timeline holds which segments on the way to a target timeline, from the
/// target's history: recovery replays segment n from the newest timeline of the
/// path that had begun by n (XLogFileReadAnyTLI).
public struct TimelinePath: Sendable, Equatable {
    public struct Span: Sendable, Equatable {
        public let timeline: UInt32
        /// First segment of the timeline (the one holding its start point).
        public let firstSegment: UInt64
        /// Last segment of the timeline, nil for the target (still open).
        public let lastSegment: UInt64?
    }

    public let spans: [Span]

    public init(target: UInt32, history: [TimelineHistoryEntry], geometry: WalGeometry) {
        var spans: [Span] = []
        var begin: WalLSN?
        for entry in history {
            spans.append(Span(
                timeline: entry.parent,
                firstSegment: begin.map(geometry.segmentNumber(containing:)) ?? 0,
                lastSegment: geometry.segmentNumber(endingAt: entry.switchpoint)))
            begin = entry.switchpoint
        }
        spans.append(Span(timeline: target, firstSegment: begin.map(geometry.segmentNumber(containing:)) ?? 0, lastSegment: nil))
        self.spans = spans
    }

    public var timelines: [UInt32] { spans.map(\.timeline) }
    public var target: UInt32 { spans.last!.timeline }

    /// The timelines whose files may serve segment `segno`, preferred first.
    public func timelines(forSegment segno: UInt64) -> [UInt32] {
        spans.reversed().filter { $0.firstSegment <= segno && ($0.lastSegment.map { segno <= $0 } ?? true) }.map(\.timeline)
    }

    /// The timeline recovery expects segment `segno` on (for naming a missing one).
    public func timeline(forSegment segno: UInt64) -> UInt32 {
        timelines(forSegment: segno).first ?? target
    }
}

// MARK: - Small helpers

/// Text helpers of wal-status, in a namespace of their own.
enum WalText {
    /// Eight upper-case hex digits, zero-padded.
    static func hex8(_ value: UInt64) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// One to eight hex digits as a number.
    static func hex32(_ text: some StringProtocol) -> UInt32? {
        guard !text.isEmpty, text.utf8.count <= 8 else { return nil }
        return UInt32(text, radix: 16)
    }

    static func trim(_ text: some StringProtocol) -> String {
        var s = Substring(text)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }

    /// `16MB`, `1.5GB`, `512kB`, `12 bytes`, in PostgreSQL's units.
    static func bytes(_ bytes: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "kB")]
        for (size, name) in units where bytes >= size {
            if bytes % size == 0 { return "\(bytes / size)\(name)" }
            let tenths = (bytes * 10 + size / 2) / size
            return "\(tenths / 10).\(tenths % 10)\(name)"
        }
        return "\(bytes) bytes"
    }

    /// `1 file`, `3 files`.
    static func count(_ n: some BinaryInteger, _ noun: String) -> String {
        "\(n) \(noun)\(n == 1 ? "" : "s")"
    }

    /// An error's text on one line (for a check's detail).
    static func oneLine(_ error: Error) -> String {
        "\(error)".split(whereSeparator: \.isNewline).map { trim($0) }.filter { !$0.isEmpty }.joined(separator: " ")
    }
}

private func isUpperHex(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46)
}
