import Foundation

/// Durations on the command line, one parser for every option that takes one
/// (`--lock-wait-timeout`, `--older-than`, wal-status's `--timeout` and
/// `--max-age`, export-worker's `--poll-interval` and `--lease`), and their
/// form in messages.
///
/// A duration is one or more terms, each a number and a unit, spaces allowed:
/// `30s`, `2min`, `2m`, `1h30m`, `90 days`, `12months`, `1year`. A lone number
/// takes the option's own unit (seconds, or milliseconds for a lock timeout,
/// as PostgreSQL reads it). `1h30` is refused: the `30` would be a guess.
public enum DurationText {
    public enum Unit: String, Sendable, CaseIterable {
        case milliseconds, seconds, minutes, hours, days, weeks, months, years

        /// Its length in seconds; nil for months and years, which are calendar units.
        public var seconds: Double? {
            switch self {
            case .milliseconds: 0.001
            case .seconds: 1
            case .minutes: 60
            case .hours: 3600
            case .days: 86400
            case .weeks: 604_800
            case .months, .years: nil
            }
        }

        /// The spellings each unit accepts (any case). `m` is minutes, as in
        /// `15m`; months are `mon`, `month` or `months`.
        static let spellings: [String: Unit] = {
            let names: [Unit: [String]] = [
                .milliseconds: ["ms", "msec", "msecs", "millisecond", "milliseconds"],
                .seconds: ["s", "sec", "secs", "second", "seconds"],
                .minutes: ["m", "min", "mins", "minute", "minutes"],
                .hours: ["h", "hr", "hrs", "hour", "hours"],
                .days: ["d", "day", "days"],
                .weeks: ["w", "week", "weeks"],
                .months: ["mon", "mons", "month", "months"],
                .years: ["y", "yr", "yrs", "year", "years"],
            ]
            return Dictionary(uniqueKeysWithValues: names.flatMap { unit, spellings in spellings.map { ($0, unit) } })
        }()
    }

    public struct Term: Sendable, Equatable {
        public var count: Double
        public var unit: Unit
    }

    /// The terms of `text`, or nil when it is not a duration (empty, a sign,
    /// an unknown unit, a number without a unit after a term with one, a
    /// lone number where `bare` is nil).
    public static func terms(_ text: String, bare: Unit?) -> [Term]? {
        var terms: [Term] = []
        var rest = Substring(text.lowercased())
        func skipSpaces() { rest = rest.drop { $0 == " " || $0 == "\t" } }
        skipSpaces()
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard let count = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            skipSpaces()
            let word = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(word.count)
            skipSpaces()
            if word.isEmpty {
                guard terms.isEmpty, rest.isEmpty, let bare else { return nil }
                return [Term(count: count, unit: bare)]
            }
            guard let unit = Unit.spellings[String(word)] else { return nil }
            terms.append(Term(count: count, unit: unit))
        }
        return terms.isEmpty ? nil : terms
    }

    /// Seconds of a fixed-length, positive duration (a lone number is seconds);
    /// nil for anything else, months and years included.
    public static func seconds(_ text: String) -> Double? {
        guard let total = length(text, bare: .seconds), total > 0 else { return nil }
        return total
    }

    /// Seconds of a fixed-length duration, zero included; nil for anything
    /// else, months and years included.
    public static func length(_ text: String, bare: Unit?) -> Double? {
        fixedSeconds(terms(text, bare: bare))
    }

    /// The value for PostgreSQL's `lock_timeout` (a lone number is
    /// milliseconds, as PostgreSQL reads it; 0 is no limit), in a unit
    /// PostgreSQL accepts: `30s`, `2min`, `300ms`. nil for anything else.
    public static func lockTimeout(_ text: String) -> String? {
        guard let total = length(text, bare: .milliseconds) else { return nil }
        let ms = Int64((total * 1000).rounded())
        guard ms <= Int64(Int32.max) else { return nil }
        if ms > 0 && ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms > 0 && ms % 60000 == 0 { return "\(ms / 60000)min" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }

    /// A PostgreSQL interval of days or longer units (`12months` → `12 months`,
    /// `1year` → `1 years`, `90 days`), for a cutoff counted in the calendar;
    /// nil for anything else: `12m` is twelve minutes, not months, and a lone
    /// number has no unit to go by.
    public static func calendarInterval(_ text: String) -> String? {
        guard let terms = terms(text, bare: nil),
              terms.allSatisfy({ ($0.unit.seconds ?? .infinity) >= 86400 }),
              terms.contains(where: { $0.count > 0 }) else { return nil }
        return terms.map { "\(number($0.count)) \($0.unit.rawValue)" }.joined(separator: " ")
    }

    static func fixedSeconds(_ terms: [Term]?) -> Double? {
        guard let terms else { return nil }
        var total = 0.0
        for term in terms {
            guard let length = term.unit.seconds else { return nil }
            total += term.count * length
        }
        return total
    }

    /// `12`, not `12.0`; `1.5` as it is.
    static func number(_ n: Double) -> String {
        n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    }

    /// `850ms`, `42s`, `4m10s`, `2h5m`, `3d4h`.
    public static func format(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return s % 60 == 0 ? "\(s / 60)m" : "\(s / 60)m\(s % 60)s" }
        if s < 86400 { return (s % 3600) / 60 == 0 ? "\(s / 3600)h" : "\(s / 3600)h\((s % 3600) / 60)m" }
        return (s % 86400) / 3600 == 0 ? "\(s / 86400)d" : "\(s / 86400)d\((s % 86400) / 3600)h"
    }}
