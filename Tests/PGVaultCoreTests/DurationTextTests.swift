import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// One parser for every duration on the command line (DurationText).
@Suite("DurationText: one parser for every duration option")
struct DurationTextTests {
    static let secondsCases: [(text: String, seconds: Double?)] = [
        ("30s", 30), ("2min", 120), ("2m", 120), ("1h", 3600), ("90", 90), ("15m", 900), ("1h30m", 5400),
        ("1h 30m", 5400), ("2d", 172_800), ("0.5s", 0.5), ("300ms", 0.3), ("2 minutes", 120), ("1W", 604_800),
        // Not a fixed length, or not a duration at all.
        ("90days", 7_776_000), ("12months", nil), ("1year", nil), ("", nil), ("m", nil), ("15x", nil),
        ("1h30", nil), ("-5m", nil), ("0", nil), ("0s", nil), ("soon", nil), ("1..5s", nil),
    ]

    @Test("seconds: fixed-length, positive durations", arguments: secondsCases)
    func seconds(text: String, seconds: Double?) {
        #expect(DurationText.seconds(text) == seconds)
    }

    static let calendarCases: [(text: String, interval: String?)] = [
        ("12months", "12 months"), ("12 months", "12 months"), ("90days", "90 days"), ("1year", "1 years"),
        ("8 weeks", "8 weeks"), ("8w", "8 weeks"), ("1y6mon", "1 years 6 months"), ("2Years", "2 years"),
        // `12m` is minutes, too fine for a cutoff; a lone number has no unit.
        ("12m", nil), ("30s", nil), ("90", nil), ("0days", nil), ("soon", nil), ("", nil),
    ]

    @Test("calendarInterval: --older-than's units of days or longer", arguments: calendarCases)
    func calendar(text: String, interval: String?) {
        #expect(DurationText.calendarInterval(text) == interval)
    }

    static let lockCases: [(text: String, postgres: String?)] = [
        ("30s", "30s"), ("2min", "2min"), ("2m", "2min"), ("1h", "1h"), ("300ms", "300ms"), ("1.5s", "1500ms"),
        // A lone number is milliseconds, as PostgreSQL reads lock_timeout; 0 is no limit.
        ("3000", "3s"), ("0", "0s"),
        ("1year", nil), ("30 parsecs", nil), ("", nil), ("30d", nil),
    ]

    @Test("lockTimeout: a value PostgreSQL's lock_timeout accepts", arguments: lockCases)
    func lockTimeout(text: String, postgres: String?) {
        #expect(DurationText.lockTimeout(text) == postgres)
    }

    @Test("every accepted lock timeout is one PostgreSQL accepts", arguments: ["30s", "2m", "1h30m", "300ms", "1.5s", "3000", "0"])
    func lockTimeoutOnServer(text: String) throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        let value = try #require(DurationText.lockTimeout(text))
        try conn.execute("SET lock_timeout = \(SQL.literal(value))")
        let shown = try #require(try conn.query("SHOW lock_timeout").scalar)
        let expected = try #require(DurationText.length(text, bare: .milliseconds))
        #expect(DurationText.lockTimeout(shown) == DurationText.lockTimeout(String(Int((expected * 1000).rounded())) + "ms"), "\(text) → \(value) → \(shown)")
    }
}
