/// `--since` / `--until`: a half-open window [since, until) of time that picks
/// the range partitions whose bounds overlap it.
///
/// Bounds are compared as instants. A value without a zone (a `date` or
/// `timestamp without time zone` key, or `--since 2025-01-01`) is read as UTC,
/// which is how pgvault writes every bound it reads (the catalog is read with
/// `TimeZone = UTC`, see ``CopySession``). `MINVALUE`/`MAXVALUE` and
/// `-infinity`/`infinity` are unbounded. A partition whose bounds are not times
/// (an integer range, a list or hash partition) is not selected by time: it is
/// restored whole, and so is a plain table.
public struct TimeWindow: Sendable, Equatable {
    /// Seconds since 1970-01-01 UTC; nil = unbounded.
    public var since: Double?
    public var until: Double?

    public init(since: Double? = nil, until: Double? = nil) {
        self.since = since
        self.until = until
    }

    /// Parses the command-line values; throws naming the one it cannot read.
    public init(since sinceText: String?, until untilText: String?) throws {
        func read(_ text: String?, _ flag: String) throws -> Double? {
            guard let text else { return nil }
            guard let value = TimePoint.parse(text), value.isFinite else {
                throw PGVaultError.usage("\(flag) '\(text)': not a date or time; write e.g. 2025-01-01, 2025-01-01T12:00:00Z or '2025-01-01 12:00:00+02'")
            }
            return value
        }
        since = try read(sinceText, "--since")
        until = try read(untilText, "--until")
        if let since, let until, let sinceText, let untilText, since >= until {
            throw PGVaultError.usage("--since \(sinceText) is not before --until \(untilText): the window is empty")
        }
    }

    public var isUnbounded: Bool { since == nil && until == nil }

    /// Whether a range partition `FROM (from) TO (to)` holds rows in the window;
    /// nil when the bounds are not times (the window does not apply).
    ///
    /// With a multi-column key only the first column decides, and a row whose
    /// first column equals the upper bound may still belong (`(t, 5)` < `(t, 9)`),
    /// so the upper bound is then inclusive.
    public func overlaps(from: [String], to: [String]) -> Bool? {
        guard let f = from.first, let t = to.first,
              let lower = TimePoint.parse(f), let upper = TimePoint.parse(t) else { return nil }
        let inclusiveUpper = from.count > 1 || to.count > 1
        if let until, !(lower < until) { return false }
        if let since {
            if inclusiveUpper ? upper < since : upper <= since { return false }
        }
        return true
    }
}

/// Reads the timestamps PostgreSQL prints for partition bounds (ISO DateStyle)
/// and the ones a user types: `YYYY-MM-DD`, optionally followed by `T` or a
/// space and `HH:MM[:SS[.fraction]]`, optionally followed by a zone `Z`,
/// `+HH`, `+HH:MM` or `+HHMM` (or `-`), optionally followed by ` BC`.
public enum TimePoint {
    /// Seconds since 1970-01-01 UTC, ±infinity for MINVALUE/MAXVALUE and
    /// ±infinity, nil if the text is not a time.
    public static func parse(_ text: String) -> Double? {
        var s = Substring(text.trimmingSpaces())
        switch s.lowercased() {
        case "minvalue", "-infinity": return -.infinity
        case "maxvalue", "infinity": return .infinity
        default: break
        }
        var bc = false
        if s.hasSuffix(" BC") { bc = true; s = s.dropLast(3) }
        guard let year = number(&s, digits: 4...6), take(&s, "-"), let month = number(&s, digits: 2...2), take(&s, "-"),
              let day = number(&s, digits: 2...2), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = 0.0
        if take(&s, "T") || take(&s, " ") {
            guard let h = number(&s, digits: 2...2), take(&s, ":"), let m = number(&s, digits: 2...2),
                  h <= 24, m < 60 else { return nil }
            seconds = Double(h * 3600 + m * 60)
            if take(&s, ":") {
                guard let sec = number(&s, digits: 2...2), sec <= 60 else { return nil }
                seconds += Double(sec)
                if take(&s, ".") {
                    let digits = s.prefix { $0.isASCII && $0.isNumber }
                    guard !digits.isEmpty, let fraction = Double("0." + digits) else { return nil }
                    seconds += fraction
                    s = s.dropFirst(digits.count)
                }
            }
        }
        if take(&s, "Z") {
            // UTC
        } else if let sign = s.first, sign == "+" || sign == "-" {
            s = s.dropFirst()
            guard let hh = number(&s, digits: 2...2) else { return nil }
            var offset = hh * 3600
            _ = take(&s, ":")
            if let mm = number(&s, digits: 2...2) {
                offset += mm * 60
                _ = take(&s, ":")
                if let ss = number(&s, digits: 2...2) { offset += ss }
            }
            seconds -= Double(sign == "+" ? offset : -offset)
        }
        guard s.isEmpty else { return nil }
        let astronomicalYear = bc ? 1 - year : year
        return Double(daysFromCivil(astronomicalYear, month, day)) * 86400 + seconds
    }

    private static func take(_ s: inout Substring, _ c: Character) -> Bool {
        guard s.first == c else { return false }
        s = s.dropFirst()
        return true
    }

    private static func number(_ s: inout Substring, digits: ClosedRange<Int>) -> Int? {
        let run = s.prefix { $0.isASCII && $0.isNumber }
        let count = min(run.count, digits.upperBound)
        guard count >= digits.lowerBound, let value = Int(run.prefix(count)) else { return nil }
        s = s.dropFirst(count)
        return value
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
