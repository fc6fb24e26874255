extension Synth {
    /// Fixed dates (never the current date) and the mapping from row index to time.
    /// Times are microseconds since 1970-01-01 UTC.
    enum Timeline {
        static let second: Int64 = 1_000_000
        static let minute: Int64 = 60 * second
        static let hour: Int64 = 60 * minute
        static let day: Int64 = 24 * hour

        /// 2024-01-01: the first monthly partition, and the snowflake epoch of
        /// generate_snowflake_id().
        static let rangeStart = micros(2024, 1, 1)
        /// 2027-01-01: end of the last monthly partition (2026-12).
        static let rangeEnd = micros(2027, 1, 1)
        /// Rows outside the partitioned range land in the DEFAULT partitions.
        static let earlyStart = micros(2023, 6, 1)
        static let lateEnd = micros(2027, 4, 1)
        /// Users and servers are created over this span (front-loaded).
        static let entitiesEnd = micros(2026, 10, 1)

        static let snowflakeEpochMillis: Int64 = 1_704_067_200_000

        /// Microseconds at midnight UTC of a civil date.
        static func micros(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
            Int64(daysFromCivil(year, month, day)) * Self.day
        }

        /// Howard Hinnant's days_from_civil.
        static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
            let y = m <= 2 ? y0 - 1 : y0
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let mp = (m + 9) % 12
            let doy = (153 * mp + 2) / 5 + d - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return era * 146_097 + doe - 719_468
        }

        static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
            let z = z0 + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let d = doy - (153 * mp + 2) / 5 + 1
            let m = mp < 10 ? mp + 3 : mp - 9
            return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
        }

        /// A snowflake id in generate_snowflake_id()'s layout: milliseconds since
        /// 2024-01-01 in the high bits, then 10 bits of worker (our per-table tag, all
        /// >= 512 so they never equal the database function's worker 1), then 12 bits
        /// of sequence. Rows dated before 2024 get negative ids, as the database
        /// function would give them; ids stay time-sortable.
        static func snowflake(_ time: Int64, tag: Int64, sequence: Int64) -> Int64 {
            let ms = floorDiv(time, 1000) - snowflakeEpochMillis
            return (ms << 22) | ((tag & 0x3FF) << 12) | (sequence & 0xFFF)
        }

        static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
            let q = a / b
            return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
        }

        /// Entity creation time for row `index` of `count`: strictly increasing with
        /// the index, front-loaded (half the rows in the first quarter of the span).
        static func entityTime(_ index: Int, of count: Int, from start: Int64, to end: Int64, jitter: Double) -> Int64 {
            let u = (Double(index) + jitter) / Double(max(count, 1))
            return start + Int64(Double(end - start) * u * u)
        }

        /// How many of `count` entities created by entityTime exist at `time`.
        static func entitiesExisting(at time: Int64, of count: Int, from start: Int64, to end: Int64) -> Int {
            if time < start { return 0 }
            if time >= end { return count }
            let f = Double(time - start) / Double(end - start)
            return min(count, Int(f.squareRoot() * Double(count)) + 1)
        }
    }

    /// Where the index-th of `count` time-ordered rows (messages, audit log entries)
    /// falls: a small share before 2024 and after 2026 (DEFAULT partitions), the rest
    /// stratified over 2024-01 .. 2026-12 (or up to `rangeEnd`) with activity growing
    /// threefold, so every monthly partition gets rows once count is a few hundred
    /// (every daily one once count is 4 per day). Strictly increasing
    /// with the index (at most one row per stratum), which keeps index-based
    /// snowflake sequences unique.
    struct TimeLayout: Sendable {
        let count: Int
        let early: Int
        let late: Int
        /// End of the partitioned range (exclusive); the late rows fall in the
        /// 90 days after it.
        let rangeEnd: Int64

        init(count: Int, outsideShare: Double = 0.005, rangeEnd: Int64 = Timeline.rangeEnd) {
            self.count = count
            self.rangeEnd = rangeEnd
            let outside = max(2, Int((Double(count) * outsideShare).rounded()))
            early = outside / 2
            late = outside - early
        }

        var middle: Int { count - early - late }

        func time(_ index: Int, jitter: Double) -> Int64 {
            if index < early {
                let u = (Double(index) + jitter) / Double(early)
                return Timeline.earlyStart + Int64(Double(Timeline.rangeStart - Timeline.earlyStart) * u)
            }
            if index >= count - late {
                let u = (Double(index - (count - late)) + jitter) / Double(late)
                return rangeEnd + Int64(Double(Timeline.lateEnd - Timeline.rangeEnd) * u)
            }
            // Density (1 + 2x)/2 on [0, 1): CDF (x + x^2)/2, inverted.
            let u = (Double(index - early) + jitter) / Double(middle)
            let x = ((1 + 8 * u).squareRoot() - 1) / 2
            return Timeline.rangeStart + Int64(Double(rangeEnd - Timeline.rangeStart) * x)
        }
    }
}
