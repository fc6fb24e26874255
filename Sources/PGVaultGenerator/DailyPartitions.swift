import PGClient

/// Replaces the monthly partitions the migrations gave a table with daily ones
/// (the `many-partitions` shape), made the way `create_monthly_partition`
/// (migrations/…_create_partitioned_tables) makes monthly ones: in the parent's
/// schema, named `<parent>_YYYY_MM_DD`, every identifier quoted, bounds at UTC
/// midnight written with an explicit `+00` so that neither `TimeZone` nor
/// `DateStyle` changes them. The DEFAULT partition stays and takes whatever
/// falls outside the days. A daily and a monthly partition of the same day
/// cannot coexist (their ranges overlap), so the monthly ones go first; they
/// are empty, since the generator only runs on an empty database.
enum DailyPartitions {
    /// The snowflake ids keep 41 bits of milliseconds since 2024: about 69
    /// years. 20,000 days (55 years) stays well inside.
    static let maximum = 20_000
    /// Partitions created per transaction: each holds a lock on the new table,
    /// its TOAST table and every index it inherits until commit, and the lock
    /// table has room for about 6,400 with the default settings.
    static let batch = 250

    static func partitionName(_ parent: String, day: Int) -> String {
        let d = Synth.Timeline.civilFromDays(day)
        return parent + "_" + pad(d.year, 4) + "_" + pad(d.month, 2) + "_" + pad(d.day, 2)
    }

    /// `YYYY-MM-DD 00:00:00+00` of a day counted from 1970-01-01.
    static func bound(day: Int) -> String {
        let d = Synth.Timeline.civilFromDays(day)
        return pad(d.year, 4) + "-" + pad(d.month, 2) + "-" + pad(d.day, 2) + " 00:00:00+00"
    }

    private static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// Detaches and drops `table`'s bounded partitions, then creates `days`
    /// daily ones from 2024-01-01, `batch` per transaction.
    static func replaceMonthly(_ conn: PGConnection, table: String, days: Int, progress: (String) -> Void) throws {
        let parent = try conn.query("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = $1::regclass AND c.relkind = 'p'
            """, [table]).rows
        guard let row = parent.first, let schema = row[0], let name = row[1] else {
            throw GeneratorError("\(table) is not a partitioned table: run pgvault migrate on an empty database first")
        }
        let qualifiedParent = SQL.qualified(schema, name)
        try conn.transaction { c in
            let bounded = try c.query("""
                SELECT n.nspname, p.relname FROM pg_inherits i
                JOIN pg_class p ON p.oid = i.inhrelid JOIN pg_namespace n ON n.oid = p.relnamespace
                WHERE i.inhparent = $1::regclass AND pg_get_expr(p.relpartbound, p.oid) <> 'DEFAULT'
                ORDER BY 2
                """, [table]).rows
            for partition in bounded {
                let qualified = SQL.qualified(partition[0]!, partition[1]!)
                try c.execute("ALTER TABLE \(qualifiedParent) DETACH PARTITION \(qualified); DROP TABLE \(qualified)")
            }
        }
        let first = Synth.Timeline.daysFromCivil(2024, 1, 1)
        var made = 0
        while made < days {
            let end = min(days, made + batch)
            var sql = ""
            for day in (first + made)..<(first + end) {
                sql += "CREATE TABLE \(SQL.qualified(schema, partitionName(name, day: day))) PARTITION OF \(qualifiedParent) "
                    + "FOR VALUES FROM (\(SQL.literal(bound(day: day)))) TO (\(SQL.literal(bound(day: day + 1))));\n"
            }
            try conn.transaction { c in try c.execute(sql) }
            made = end
        }
        progress("\(table): \(days) daily partitions from \(bound(day: first).prefix(10)) to \(bound(day: first + days - 1).prefix(10))")
    }
}
