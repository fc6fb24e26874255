import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What one lock object under `locks/` says: who holds the repository, how,
/// and since when (docs/storage.md, "Locks"). The JSON of the object.
public struct RepositoryLockRecord: Codable, Sendable, Equatable {
    /// `shared` for backup, restore and check (any number at once);
    /// `exclusive` for prune, which deletes what no snapshot uses.
    public enum Kind: String, Codable, Sendable {
        case shared, exclusive
    }

    public var kind: Kind
    /// The pgvault command that holds it (`backup`, `prune`), for messages.
    public var command: String
    public var hostname: String
    public var pid: Int32
    /// ISO-8601 UTC.
    public var startedAt: String
    /// ISO-8601 UTC; rewritten by the holder while it runs, so a lock whose
    /// holder vanished on another machine goes stale.
    public var refreshedAt: String

    public init(kind: Kind, command: String, hostname: String, pid: Int32, startedAt: String, refreshedAt: String) {
        self.kind = kind
        self.command = command
        self.hostname = hostname
        self.pid = pid
        self.startedAt = startedAt
        self.refreshedAt = refreshedAt
    }

    /// The object's bytes: one line of JSON, keys sorted.
    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self)) + [0x0A]
    }

    /// The record in `bytes`, or why they are not one: an unreadable lock
    /// object still counts as held, so the reason goes into the message.
    static func decode(_ bytes: [UInt8]) -> Result<RepositoryLockRecord, LockProblem> {
        let record: RepositoryLockRecord
        do {
            record = try JSONDecoder().decode(RepositoryLockRecord.self, from: Data(bytes))
        } catch {
            return .failure(LockProblem(reason: "not a pgvault lock record (\(error))"))
        }
        guard record.pid > 0 else { return .failure(LockProblem(reason: "its pid \(record.pid) is not a process id")) }
        for (field, text) in [("startedAt", record.startedAt), ("refreshedAt", record.refreshedAt)] where ISO8601.parse(text) == nil {
            return .failure(LockProblem(reason: "its \(field) '\(text)' is not an ISO-8601 time"))
        }
        return .success(record)
    }

    /// `prune (pid 1234 on host db1, since 2026-12-04T10:00:00Z)`.
    public var holder: String {
        let since = ISO8601.parse(startedAt).map(RepositoryLockRecord.wholeSeconds) ?? startedAt
        return "\(command) (pid \(pid) on host \(hostname), since \(since))"
    }

    /// A time as messages show it: UTC, whole seconds.
    static func wholeSeconds(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}

/// Why a lock object could not be read as a record.
struct LockProblem: Error, Sendable {
    var reason: String
}

/// One object found under `locks/`: its record, or, for an object that is
/// not one, why (such an object blocks everyone, never ignored).
public struct RepositoryLockEntry: Sendable, CustomStringConvertible {
    public let key: String
    public let record: RepositoryLockRecord?
    /// Why the object is not a lock record; nil when `record` is set.
    public let problem: String?

    init(key: String, bytes: Result<[UInt8], any Error>) {
        self.key = key
        switch bytes.flatMap({ RepositoryLockRecord.decode($0).mapError { $0 as any Error } }) {
        case .success(let record):
            self.record = record
            problem = nil
        case .failure(let error as LockProblem):
            record = nil
            problem = error.reason
        case .failure(let error):
            record = nil
            problem = "\(error)"
        }
    }

    /// The holder, or the unreadable object by its key and the reason.
    public var description: String {
        record?.holder ?? "an unreadable lock object '\(key)' (\(problem ?? "unknown"))"
    }
}

/// A lock that was removed because its holder is gone, and how that was known.
public struct StaleRepositoryLock: Sendable, CustomStringConvertible {
    public let entry: RepositoryLockEntry
    public let reason: String

    /// `removed the stale lock of backup (pid 12 on host db1, since ...): its process is gone from this host`.
    public var description: String { "removed the stale lock of \(entry): \(reason)" }
}

/// The rules, pure: which locks exclude which, and when one is stale.
enum RepositoryLockRules {
    /// An exclusive lock excludes every other lock and is excluded by every
    /// other; shared locks exclude only exclusive ones. An unreadable object
    /// might be anything, so it excludes everything.
    static func conflicts(_ mine: RepositoryLockRecord.Kind, with other: RepositoryLockEntry) -> Bool {
        guard let record = other.record else { return true }
        return mine == .exclusive || record.kind == .exclusive
    }

    /// Why `entry` is stale, or nil if its holder may still run: a process
    /// of this host that no longer exists (kill(pid, 0) says ESRCH), or a
    /// lock not refreshed for `staleAfter` (a holder on another machine that
    /// died; clocks are assumed to agree within a fraction of that). An
    /// unreadable object is never stale: only an operator removes it.
    static func staleness(
        of entry: RepositoryLockEntry, now: Date, staleAfter: TimeInterval, host: String,
        processExists: (Int32) -> Bool = RepositoryLockRules.processExists
    ) -> String? {
        guard let record = entry.record else { return nil }
        if record.hostname == host, !processExists(record.pid) {
            return "its process (pid \(record.pid)) is gone from this host"
        }
        if let refreshed = ISO8601.parse(record.refreshedAt), now.timeIntervalSince(refreshed) > staleAfter {
            return "not refreshed since \(RepositoryLockRecord.wholeSeconds(refreshed)) (more than \(DurationText.format(staleAfter)))"
        }
        return nil
    }

    /// Whether a process `pid` exists on this machine. EPERM means it
    /// exists under another user; only ESRCH means it is gone.
    static func processExists(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno != ESRCH
    }
}
