import Foundation
import PGClient

/// Compares one table (or partition, or a partitioned table as a whole) of a
/// restored database with the archive's units for it: row count and
/// order-independent content digest, read with `COPY (SELECT ...) TO STDOUT`
/// under the backup's session settings.
struct DigestCheck: Sendable, Equatable {
    /// The archive's table, as findings name it.
    var object: String
    /// The table read on the target (the same name unless a partition was
    /// matched by its bounds under another name).
    var target: Manifest.Table
    var units: [Manifest.Unit]
    /// Columns naming a row in samples (primary key, else a NOT NULL unique key).
    var keyColumns: [String]
    /// Why the comparison is not per partition, if it is not.
    var note: String?
    /// Failures that stand only if the comparison fails: partitions missing on
    /// the target whose rows a DEFAULT partition may hold instead.
    var ifDifferent: [VerifyFinding] = []

    var expectedRows: Int64 { units.reduce(0) { $0 + $1.rows } }

    /// The merged digest of the units, or nil if the manifest holds a bad one.
    var expected: RowDigest? {
        var total = RowDigest()
        for unit in units {
            guard let d = RowDigest(hex: unit.rowDigest, rows: unit.rows) else { return nil }
            total.merge(d)
        }
        return total
    }

    var columns: [String] { units.first?.columns ?? [] }

    var format: CopyFormat { units.first?.format ?? .text }

    var sql: String {
        let only = target.kind == "partitioned" ? "" : "ONLY "
        return "COPY (SELECT \(columns.map(SQL.ident).joined(separator: ", ")) FROM \(only)\(SQL.qualified(target.schema, target.name))) TO STDOUT\(format.options())"
    }

    func run(_ conn: PGConnection, archive: ArchiveLocation) throws -> VerifyFinding {
        let suffix = note.map { " (\($0))" } ?? ""
        guard let expected else {
            return .failed("digest", object, "manifest.json holds an invalid row digest for a unit of \(object)")
        }
        guard units.allSatisfy({ $0.columns == columns && $0.format == format }) else {
            return VerifyFinding(check: "digest", status: "skipped", object: object,
                                 detail: "the archive's units of \(object) differ in their columns' order or COPY format; cannot compare them as one")
        }
        let actual = try RowDigest.of(conn, sql, format: format)
        if actual == expected {
            return .ok("digest", object, "\(actual.rows) rows; content digest matches\(suffix)")
        }
        let samples = (try? RowDiff.samples(of: self, conn: conn, archive: archive)) ?? []
        if actual.rows != expected.rows {
            let difference = actual.rows < expected.rows
                ? "\(expected.rows - actual.rows) missing" : "\(actual.rows - expected.rows) extra"
            return .failed("rows", object, "the target has \(actual.rows) rows, the archive \(expected.rows) (\(difference))\(suffix)", samples: samples)
        }
        return .failed("digest", object, "same \(actual.rows) rows, but the content differs from the archive's\(suffix)", samples: samples)
    }
}

/// Finds which rows differ when digests do not match: a multiset of the
/// archive's row hashes, then the target's rows against it, then the archive's
/// leftovers. Memory: one hash per archive row, so only up to ``rowLimit``.
enum RowDiff {
    static let rowLimit: Int64 = 2_000_000
    static let keep = 1000

    static func samples(of check: DigestCheck, conn: PGConnection, archive: ArchiveLocation) throws -> [String] {
        guard check.expectedRows <= rowLimit else { return [] }
        let source = try archive.open()
        let keyIndexes = check.keyColumns.compactMap { check.columns.firstIndex(of: $0) }
        let useKey = !keyIndexes.isEmpty && keyIndexes.count == check.keyColumns.count
        let types = check.columns.map { name in check.target.columns.first { $0.name == name }?.type ?? "" }
        func key(_ row: UnsafeRawBufferPointer) -> String {
            if check.format == .binary {
                let fields = BinaryCopy.fields(row)
                let shown = (useKey ? keyIndexes : Array(fields.indices.prefix(3))).map { i in
                    i < fields.count ? BinaryCopy.display(fields[i], type: types[i]) : nil
                }
                return useKey ? KeyText.format(check.keyColumns, shown) : "row " + shown.map { $0 ?? "NULL" }.joined(separator: ", ") + "…"
            }
            if useKey { return KeyText.format(check.keyColumns, KeyText.fields(row, keyIndexes)) }
            let text = String(decoding: row, as: UTF8.self)
            return "row " + (text.count > 60 ? String(text.prefix(60)) + "…" : text)
        }
        func eachArchiveRow(_ body: (UnsafeRawBufferPointer) -> Void) throws {
            for unit in check.units {
                var splitter = RowSplitter(unit.format)
                try Archive.streamUnit(unit, from: source) { chunk in try splitter.feed(chunk, row: body) }
            }
        }
        func hash(_ row: UnsafeRawBufferPointer) -> UInt64 { XXH64.hash(row, seed: 0) }

        var counts: [UInt64: Int32] = [:]
        counts.reserveCapacity(Int(check.expectedRows))
        try eachArchiveRow { counts[hash($0), default: 0] += 1 }
        var extra: [String] = []
        var reader = CopyRowReader(check.format)
        try conn.copyOut(check.sql) { message in
            guard let row = try reader.row(in: message) else { return }
            let h = hash(row)
            if let c = counts[h], c > 0 {
                counts[h] = c - 1
            } else if extra.count < keep {
                extra.append(key(row))
            }
        }
        var missing: [String] = []
        try eachArchiveRow { row in
            let h = hash(row)
            if let c = counts[h], c > 0 {
                counts[h] = c - 1
                if missing.count < keep { missing.append(key(row)) }
            }
        }
        let extraSet = Set(extra), missingSet = Set(missing)
        let changed = missing.filter { extraSet.contains($0) }.map { "\($0) (changed)" }
        let gone = missing.filter { !extraSet.contains($0) }.map { "\($0) (missing on the target)" }
        let added = extra.filter { !missingSet.contains($0) }.map { "\($0) (not in the archive)" }
        return Array((changed + gone + added).prefix(OrphanCheck.sampleLimit))
    }
}

/// Which comparisons a restored database needs, from the manifest and the
/// target's catalog.
enum RestorePlan {
    /// - Plain tables: compared as a whole (the ctid-range units merged).
    /// - Partitioned tables: each archived partition is matched to the target's
    ///   partition with the same bound under the matched parent (any name) and
    ///   compared alone; one with no match is reported missing, by name and
    ///   bound. If the target has partitions the archive has not (it is
    ///   partitioned differently), the partitioned table is compared as a whole.
    ///   So it is when every partition with no match has a DEFAULT partition on
    ///   the target to take its rows (a restore with --no-create-partitions
    ///   routes them there); the missing ones are named if it then differs.
    /// `selected` limits the plan to tables holding one of those unit ids: a
    /// plain table is then compared against all of its units, a partitioned
    /// table compared as a whole against the units of its chosen partitions.
    static func make(
        tables: [Manifest.Table], units: [Manifest.Unit], target: [Manifest.Table], selected: Set<String>?
    ) -> (checks: [DigestCheck], findings: [VerifyFinding]) {
        func parentName(_ t: Manifest.Table) -> String? {
            guard let s = t.parentSchema, let n = t.parentName else { return nil }
            return "\(s).\(n)"
        }
        let targetByName = Dictionary(target.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        let archivedByName = Dictionary(tables.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        let targetChildren = Dictionary(grouping: target.filter { parentName($0) != nil }, by: { parentName($0)! })
        let archived = Set(tables.map(\.qualifiedName))
        let children = Dictionary(grouping: tables.filter { parentName($0).map(archived.contains) == true }, by: { parentName($0)! })
        let unitsOf = Dictionary(grouping: units, by: \.qualifiedTable)
        func isSelected(_ t: Manifest.Table) -> Bool {
            guard let units = unitsOf[t.qualifiedName], !units.isEmpty else { return false }
            return selected.map { s in units.contains { s.contains($0.id) } } ?? true
        }
        func leaves(_ t: Manifest.Table) -> [Manifest.Table] {
            t.kind == "partitioned" ? (children[t.qualifiedName] ?? []).flatMap(leaves) : [t]
        }
        func descendants(_ t: Manifest.Table) -> [Manifest.Table] {
            (targetChildren[t.qualifiedName] ?? []).flatMap { [$0] + descendants($0) }
        }

        var checks: [DigestCheck] = []
        var findings: [VerifyFinding] = []
        for root in tables where parentName(root).map(archived.contains) != true {
            let chosen = leaves(root).filter(isSelected)
            guard !chosen.isEmpty else { continue }
            guard let t = targetByName[root.qualifiedName] else {
                findings.append(.failed("rows", root.qualifiedName, "\(root.qualifiedName) is missing on the target"))
                continue
            }
            let chosenUnits = chosen.flatMap { unitsOf[$0.qualifiedName] ?? [] }
            if root.kind != "partitioned" {
                checks.append(DigestCheck(object: root.qualifiedName, target: t, units: chosenUnits, keyColumns: root.keyColumns ?? []))
                continue
            }
            // Match partitions by bound, level by level.
            var counterpart = [root.qualifiedName: t]
            func match(_ m: Manifest.Table) {
                for child in children[m.qualifiedName] ?? [] {
                    if let parent = counterpart[m.qualifiedName],
                       let same = targetChildren[parent.qualifiedName]?.first(where: { $0.bound?.expression == child.bound?.expression }) {
                        counterpart[child.qualifiedName] = same
                    }
                    match(child)
                }
            }
            match(root)
            let matched = Set(counterpart.values.map(\.qualifiedName))
            let unmatched = descendants(t).filter { !matched.contains($0.qualifiedName) }
            if t.kind != "partitioned" || !unmatched.isEmpty {
                let why = t.kind != "partitioned"
                    ? "the target's \(t.qualifiedName) is not partitioned: compared as a whole"
                    : "the target is partitioned differently (\(unmatched.prefix(3).map(\.name).joined(separator: ", ")) not in the archive): compared as a whole"
                checks.append(DigestCheck(object: root.qualifiedName, target: t, units: chosenUnits, keyColumns: root.keyColumns ?? [], note: why))
                continue
            }
            // The target's DEFAULT partition that takes a partition's rows when
            // its own is missing: the one under its nearest matched ancestor.
            func routedDefault(_ m: Manifest.Table) -> Manifest.Table? {
                guard let p = parentName(m) else { return nil }
                guard let tp = counterpart[p] else { return archivedByName[p].flatMap(routedDefault) }
                return targetChildren[tp.qualifiedName]?.first { $0.bound?.isDefault == true }
            }
            func missing(_ leaf: Manifest.Table) -> String {
                "partition \(leaf.qualifiedName) of \(root.qualifiedName) (\(leaf.bound?.expression ?? "no bound")) is missing on the target"
            }
            let absent = chosen.filter { counterpart[$0.qualifiedName] == nil }
            let defaults = absent.compactMap(routedDefault)
            if !absent.isEmpty && defaults.count == absent.count {
                let why = "\(absent.prefix(3).map(\.name).joined(separator: ", ")) not on the target, rows routed to "
                    + "\(Set(defaults.map(\.name)).sorted().joined(separator: ", ")): compared as a whole"
                let ifDifferent = zip(absent, defaults).map { leaf, d in
                    VerifyFinding.failed(
                        "rows", leaf.qualifiedName,
                        "\(missing(leaf)) and \(root.qualifiedName) differs from the archive: its \(leaf.rows) rows may not be in \(d.qualifiedName)")
                }
                checks.append(DigestCheck(object: root.qualifiedName, target: t, units: chosenUnits, keyColumns: root.keyColumns ?? [],
                                          note: why, ifDifferent: ifDifferent))
                continue
            }
            for leaf in chosen {
                guard let tp = counterpart[leaf.qualifiedName] else {
                    findings.append(.failed("rows", leaf.qualifiedName, "\(missing(leaf)): its \(leaf.rows) rows are not there"))
                    continue
                }
                checks.append(DigestCheck(
                    object: leaf.qualifiedName, target: tp, units: unitsOf[leaf.qualifiedName] ?? [],
                    keyColumns: leaf.keyColumns ?? root.keyColumns ?? [],
                    note: tp.qualifiedName == leaf.qualifiedName ? nil : "on the target: \(tp.qualifiedName)"))
            }
        }
        return (checks, findings)
    }
}
