import ArchiveIO
import Foundation
import PGClient
import Support

/// Offline verification of an archive: the manifest, the set of members, and
/// every member's bytes, zstd stream, rows and row digest.
enum ArchiveCheck {
    enum Item: Sendable {
        case unit(Manifest.Unit)
        case schema(Manifest.Member)

        var member: String {
            switch self {
            case .unit(let u): return u.member
            case .schema(let m): return m.member
            }
        }

        var bytes: Int64 {
            switch self {
            case .unit(let u): return u.compressedBytes
            case .schema(let m): return m.bytes
            }
        }
    }

    /// What was read before streaming members: the manifest (or why not), the listing.
    struct Opening: Sendable {
        var manifest: Manifest?
        var findings: [VerifyFinding] = []
        var members: [(name: String, size: Int64)]?
        var isTar = false
    }

    static func findings(archive: ArchiveLocation, jobs: Int, progress: (@Sendable (String) -> Void)?) async throws -> [VerifyFinding] {
        let path = archive.description
        let opening = try await Blocking.run("pgvault-verify-manifest") { () throws -> Opening in
            let source = try archive.open()  // a path that does not exist: could not run
            var opening = Opening()
            opening.isTar = source is TarArchive
            do {
                opening.manifest = try Archive.manifest(of: source)
            } catch {
                // A file that is no archive, or a truncated tar, is not the manifest's
                // fault: the finding names the path the user gave.
                let whole = (error as? PGVaultError)?.wholeArchive ?? false
                opening.findings.append(.failed("archive", whole ? path : Manifest.memberName, "\(error)"))
                return opening
            }
            do {
                opening.members = try source.listMembers()
            } catch {
                opening.findings.append(.failed("archive", path, "cannot list the archive's members: \(error)"))
            }
            return opening
        }
        guard let manifest = opening.manifest else { return opening.findings }
        progress?("manifest: \(manifest.units.count) units of \(manifest.tables.count) tables")
        var findings = opening.findings + consistency(manifest)

        // Every member present, none extra, none twice.
        var expected = [Manifest.memberName: "the manifest"]
        if let schema = manifest.schema {
            expected[schema.preData.member] = "the schema (pre-data)"
            expected[schema.postData.member] = "the schema (post-data)"
            if let statistics = schema.statistics { expected[statistics.member] = "the optimizer statistics" }
        }
        for unit in manifest.units { expected[unit.member] = "unit \(unit.id) of \(unit.qualifiedTable)" }
        var missing = Set<String>()
        if let members = opening.members {
            let present = Dictionary(members.map { ($0.name, 1) }, uniquingKeysWith: +)
            for (name, role) in expected.sorted(by: { $0.key < $1.key }) where present[name] == nil {
                missing.insert(name)
                findings.append(.failed("archive", name, "member \(name) (\(role)) is missing from the archive"))
            }
            for (name, count) in present.sorted(by: { $0.key < $1.key }) {
                if expected[name] == nil {
                    findings.append(.failed("archive", name, "extra member \(name): the manifest does not list it"))
                } else if count > 1 {
                    findings.append(.failed("archive", name, "member \(name) appears \(count) times in the archive"))
                }
            }
        }

        // Stream every member that is there: size, SHA-256, zstd to its end, rows, digest.
        let schemaItems: [Item] = manifest.schema?.members.map { .schema($0) } ?? []
        let items = (schemaItems + manifest.units.map { .unit($0) }).filter { !missing.contains($0.member) }
        let count = CheckedCount(total: items.count, progress: progress)
        if opening.isTar {
            findings += try await readTar(path, items: items, jobs: jobs, count: count)
        } else {
            findings += try await WorkerPool.run(
                items, jobs: jobs, name: "pgvault-verify-archive", size: { $0.bytes },
                makeWorker: { _ in try archive.open() }
            ) { source, item in
                let found = check(item, source)
                count.checked(item.member)
                return found
            }.flatMap { $0 }
        }
        return findings
    }

    static func check(_ item: Item, _ source: ArchiveSource) -> [VerifyFinding] {
        switch item {
        case .unit(let unit): return check(unit, source)
        case .schema(let member): return [check(member, source)]
        }
    }

    /// A tar is read front to back by each of `jobs` workers, which checks
    /// every `workers`-th entry and skips the others' data: no search per
    /// member. A member appearing twice is checked once, at its first entry.
    /// Findings come in the items' order, then the damage that stopped the
    /// reading, then the members it kept from being reached.
    static func readTar(_ path: String, items: [Item], jobs: Int, count: CheckedCount) async throws -> [VerifyFinding] {
        let workers = max(1, min(jobs, items.count))
        let parts = try await WorkerPool.run(
            Array(0..<workers), jobs: workers, name: "pgvault-verify-archive", makeWorker: { _ in }
        ) { _, worker in
            try readTar(path, items: items, worker: worker, of: workers, count: count)
        }
        var found: [Int: [VerifyFinding]] = [:]
        for part in parts { found.merge(part.found) { a, _ in a } }
        let damage = parts.compactMap(\.damage)
        let unreached = items.indices.filter { found[$0] == nil }.map { items[$0] }
        return items.indices.flatMap { found[$0] ?? [] } + damage
            + unreached.map { .failed("archive", $0.member, "member \($0.member) was not reached: the archive could not be read to its end") }
    }

    /// What one worker found in a tar: findings by item, and the damage that
    /// stopped it (told by worker 0 only, so it is told once).
    struct TarPart: Sendable {
        var found: [Int: [VerifyFinding]] = [:]
        var damage: VerifyFinding?
    }

    static func readTar(_ path: String, items: [Item], worker: Int, of workers: Int, count: CheckedCount) throws -> TarPart {
        let indexOf = Dictionary(items.enumerated().map { ($1.member, $0) }, uniquingKeysWith: { a, _ in a })
        let reader = try ArchiveReader(path: path)
        let entry = TarEntry(location: path, reader: reader)
        var part = TarPart()
        var seen = Set<String>()
        var n = 0
        do {
            while let info = try reader.nextEntry() {
                guard info.type == .regularFile else { try reader.skipData(); continue }
                defer { n += 1 }
                if seen.insert(info.path).inserted, n % workers == worker, let index = indexOf[info.path] {
                    try Cancellation.check()
                    entry.current = info.path
                    part.found[index] = check(items[index], entry)
                    count.checked(items[index].member)
                } else {
                    try reader.skipData()
                }
            }
        } catch let error as CancellationError {
            throw error
        } catch {
            // A damaged tar: members not reached are reported by the caller.
            if worker == 0 {
                let detail = (error as? ArchiveError).map { "\(TarArchive.explain($0, path: path, entriesRead: max(n, 1)))" }
                    ?? "the tar file is damaged after \(n) entries: \(error)"
                part.damage = .failed("archive", path, detail)
            }
        }
        return part
    }

    /// The tar entry a reader is positioned at, as an ``ArchiveSource`` of one member.
    final class TarEntry: ArchiveSource {
        let location: String
        let reader: ArchiveReader
        var current = ""

        init(location: String, reader: ArchiveReader) {
            self.location = location
            self.reader = reader
        }

        func readMember(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
            guard name == current else { throw MissingMemberError(reason: "the reader is at \(current), not \(name)") }
            try reader.readData(into: body)
        }

        func listMembers() throws -> [(name: String, size: Int64)] { [] }
    }

    /// What the manifest says about itself: unique ids and members, plain
    /// member names, every unit's table listed, table rows = sum of unit rows.
    static func consistency(_ manifest: Manifest) -> [VerifyFinding] {
        var findings: [VerifyFinding] = []
        var ids = Set<String>(), members = Set<String>()
        let lookup = manifest.lookup
        for unit in manifest.units {
            if !ids.insert(unit.id).inserted {
                findings.append(.failed("archive", unit.member, "manifest.json lists unit id \(unit.id) twice"))
            }
            if !members.insert(unit.member).inserted {
                findings.append(.failed("archive", unit.member, "manifest.json lists member \(unit.member) for two units"))
            }
            do { try MemberPath.validate(unit.member) } catch {
                findings.append(.failed("archive", unit.member, "\(error)"))
            }
            if lookup.table(schema: unit.schema, name: unit.table) == nil {
                findings.append(.failed("archive", unit.member, "unit \(unit.id) belongs to \(unit.qualifiedTable), which manifest.json does not list"))
            }
            if RowDigest(hex: unit.rowDigest, rows: unit.rows) == nil {
                findings.append(.failed("digest", unit.member, "manifest.json has no valid row digest for unit \(unit.id) ('\(unit.rowDigest)')"))
            }
        }
        for table in manifest.tables where table.kind != "partitioned" {
            let units = lookup.units(of: table)
            let sum = units.reduce(Int64(0)) { $0 + $1.rows }
            if !units.isEmpty && sum != table.rows {
                findings.append(.failed(
                    "rows", table.qualifiedName,
                    "manifest.json gives \(table.qualifiedName) \(table.rows) rows but its units hold \(sum)",
                    samples: units.map { "\($0.member): \($0.rows)" }.prefix(5).map { $0 }))
            }
        }
        return findings
    }

    /// Streams one data unit and compares what it decodes to with the manifest.
    static func check(_ unit: Manifest.Unit, _ source: ArchiveSource) -> [VerifyFinding] {
        var splitter = RowSplitter(unit.format)
        var digest = RowDigest()
        var raw: Int64 = 0
        let what = "unit \(unit.id) of \(unit.qualifiedTable)"
        do {
            try Archive.streamUnit(unit, from: source) { chunk in
                raw += Int64(chunk.count)
                try splitter.feed(chunk) { digest.add(row: $0) }
            }
        } catch let error as PGVaultError where error.kind == .archive {
            return [.failed("archive", unit.member, "\(what) (\(unit.format.rawValue) COPY): \(error)")]
        } catch {
            return [.failed("archive", unit.member, "\(error)")]
        }
        var findings: [VerifyFinding] = []
        if let incomplete = splitter.incomplete {
            findings.append(.failed("archive", unit.member, "\(what): \(incomplete)"))
        }
        if raw != unit.rawBytes {
            findings.append(.failed("archive", unit.member, "\(what) decodes to \(raw) bytes; manifest.json says \(unit.rawBytes)"))
        }
        if digest.rows != unit.rows {
            findings.append(.failed("rows", unit.member, "\(what): decoded \(digest.rows) rows; manifest.json says \(unit.rows)"))
        } else if digest.hex != unit.rowDigest {
            findings.append(.failed("digest", unit.member, "\(what): the rows' digest \(digest.hex) differs from manifest.json's \(unit.rowDigest)"))
        }
        if findings.isEmpty {
            findings.append(.ok("archive", unit.member, "\(what): \(unit.rows) rows, \(unit.compressedBytes) bytes; size, SHA-256, zstd stream and row digest match"))
        }
        return findings
    }

    /// Streams a schema member: size, SHA-256 and a whole zstd stream.
    static func check(_ member: Manifest.Member, _ source: ArchiveSource) -> VerifyFinding {
        do {
            try Archive.streamMember(member.member, expectedBytes: member.bytes, sha256: member.sha256, from: source, maxOutput: nil) { _ in }
        } catch {
            return .failed("archive", member.member, "\(error)")
        }
        return .ok("archive", member.member, "\(member.bytes) bytes; size, SHA-256 and zstd stream match")
    }
}
