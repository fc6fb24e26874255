import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// A lock on a repository, held by one run: shared by backup, restore and
/// check, exclusive for prune, so that prune never deletes what a backup is
/// writing or a restore is reading (docs/storage.md, "Locks").
///
/// An object store has no flock and no rename, so the lock is an object:
/// `locks/<random 128-bit hex>`, created with `ifAbsent`, then the run lists
/// `locks/` and backs off (deleting its own object) if it finds a lock it
/// conflicts with. Two runs that race both write first and list second, so
/// at least the later lister sees the other's object: either one wins, or
/// both back off and report the other as the holder, which is safe (each
/// may be retried); they never both go on.
///
/// While held, a thread rewrites the object every `refreshEvery` with a new
/// `refreshedAt`, so that a lock whose holder died on another machine goes
/// stale after `staleAfter`. Every call blocks its thread (store I/O): call
/// it from a worker thread (`Blocking.run`).
public final class RepositoryLock: Sendable {
    public typealias Kind = RepositoryLockRecord.Kind

    /// The folder of lock objects in a repository's store.
    public static let prefix = "locks/"

    /// The clocks of the protocol; tests shorten them.
    public struct Timing: Sendable {
        /// A lock not refreshed for this long is stale (its holder is gone).
        public var staleAfter: TimeInterval
        /// How often the holder rewrites its lock; well under `staleAfter`,
        /// so a few failed rewrites in a row (a network blip) lose nothing.
        public var refreshEvery: TimeInterval
        /// The pause between writing one's own lock and listing the others:
        /// a store whose listing lags (docs/storage.md, "Consistency") shows
        /// a lock written just before by another run only a little later.
        public var settle: TimeInterval

        public init(staleAfter: TimeInterval = 30 * 60, refreshEvery: TimeInterval = 5 * 60, settle: TimeInterval = 0.2) {
            self.staleAfter = staleAfter
            self.refreshEvery = refreshEvery
            self.settle = settle
        }

        public static let standard = Timing()
    }

    public let store: any ObjectStore
    /// This lock's object: `locks/<32 hex digits>`.
    public let key: String
    public let kind: Kind
    /// Stale locks that acquiring removed, for the caller to report.
    public let removedStale: [StaleRepositoryLock]
    private let holder: LockHolder

    private init(holder: LockHolder, kind: Kind, removedStale: [StaleRepositoryLock]) {
        self.holder = holder
        store = holder.store
        key = holder.key
        self.kind = kind
        self.removedStale = removedStale
    }

    deinit { try? holder.release() }

    /// Takes a `kind` lock on the repository in `store` for `command`
    /// (`backup`, `prune`), removing stale locks on the way
    /// (``removedStale``), or throws an `.io` error naming the holders
    /// (``PGVaultError/isRepositoryLocked``). The lock is kept fresh by a
    /// thread of its own until ``release()``.
    public static func acquire(store: any ObjectStore, kind: Kind, command: String, timing: Timing = .standard) throws -> RepositoryLock {
        let host = ExportFiles.hostName
        let started = Date()
        let now = ISO8601.format(started)
        let record = RepositoryLockRecord(kind: kind, command: command, hostname: host, pid: getpid(), startedAt: now, refreshedAt: now)
        let key = prefix + randomName()
        try store.put(key, bytes: try record.encoded(), ifAbsent: true)
        if timing.settle > 0 { Thread.sleep(forTimeInterval: timing.settle) }

        var stale: [StaleRepositoryLock] = []
        var holders: [RepositoryLockEntry] = []
        do {
            for entry in try entries(in: store) where entry.key != key {
                if let reason = RepositoryLockRules.staleness(of: entry, now: Date(), staleAfter: timing.staleAfter, host: host) {
                    try store.delete(entry.key)
                    stale.append(StaleRepositoryLock(entry: entry, reason: reason))
                } else if RepositoryLockRules.conflicts(kind, with: entry) {
                    holders.append(entry)
                }
            }
        } catch {
            try? store.delete(key)
            throw error
        }
        guard holders.isEmpty else {
            // If this delete fails, the object goes stale like a dead run's.
            try? store.delete(key)
            throw locked(store, by: holders)
        }
        let holder = LockHolder(store: store, key: key, record: record, written: started, timing: timing)
        holder.startRefreshing()
        return RepositoryLock(holder: holder, kind: kind, removedStale: stale)
    }

    /// Rewrites the lock's `refreshedAt` now (the thread does it every
    /// `refreshEvery`). Throws if the lock was lost (``checkHeld()``) or the
    /// store failed.
    public func refresh() throws { try holder.refresh() }

    /// Throws if the lock is no longer held: its object was removed
    /// (`pgvault repo unlock`, or as stale by another run), or it could not
    /// be refreshed for `staleAfter`. A long run calls it before each step
    /// that relies on the lock (before its commit object, say).
    public func checkHeld() throws { try holder.checkHeld() }

    /// Stops refreshing and deletes the lock's object. Calling it again does
    /// nothing; dropping the lock releases it too.
    public func release() throws { try holder.release() }

    // MARK: - For `pgvault repo unlock`

    /// Every object under `locks/`, read (a missing one, deleted meanwhile, is left out).
    public static func entries(in store: any ObjectStore) throws -> [RepositoryLockEntry] {
        try store.list(prefix: prefix).compactMap { object in
            do {
                return RepositoryLockEntry(key: object.key, bytes: .success(try store.bytes(of: object.key, limit: 64 << 10)))
            } catch let error as PGVaultError where error.isMissingObject {
                return nil
            } catch {
                return RepositoryLockEntry(key: object.key, bytes: .failure(error))
            }
        }
    }

    /// Deletes every lock object, held, stale or unreadable: for an operator
    /// who knows no pgvault uses the repository. Returns what it removed.
    @discardableResult
    public static func removeAll(store: any ObjectStore) throws -> [RepositoryLockEntry] {
        let all = try entries(in: store)
        for entry in all { try store.delete(entry.key) }
        return all
    }

    /// Deletes the stale locks only (as ``acquire(store:kind:command:timing:)``
    /// would). Returns what it removed and why.
    @discardableResult
    public static func unlockStale(store: any ObjectStore, timing: Timing = .standard) throws -> [StaleRepositoryLock] {
        let host = ExportFiles.hostName
        var removed: [StaleRepositoryLock] = []
        for entry in try entries(in: store) {
            guard let reason = RepositoryLockRules.staleness(of: entry, now: Date(), staleAfter: timing.staleAfter, host: host) else { continue }
            try store.delete(entry.key)
            removed.append(StaleRepositoryLock(entry: entry, reason: reason))
        }
        return removed
    }

    // MARK: - Helpers

    /// 128 random bits in hex: no two runs pick the same name.
    static func randomName() -> String {
        (0..<2).map { _ in
            let text = String(UInt64.random(in: .min ... .max), radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    static func locked(_ store: any ObjectStore, by holders: [RepositoryLockEntry]) -> PGVaultError {
        let location = store.location
        var named = holders.prefix(3).map(\.description).joined(separator: ", ")
        if holders.count > 3 { named += " and \(holders.count - 3) more" }
        let finished = holders.count == 1 ? "it has finished" : "they have finished"
        let gone = holders.contains { $0.record == nil } ? "no pgvault is using the repository"
            : holders.count == 1 ? "that process is gone" : "those processes are gone"
        return PGVaultError(
            .io, "repository '\(location)' is locked by \(named); try again when \(finished), or if \(gone) run `pgvault repo unlock --repo \(location)`",
            underlying: RepositoryLockedError(holders: holders))
    }
}

/// Underneath a ``PGVaultError`` for a repository another run has locked.
public struct RepositoryLockedError: Error, CustomStringConvertible, Sendable {
    public let holders: [RepositoryLockEntry]
    public var description: String { "locked by " + holders.map(\.description).joined(separator: ", ") }
}

extension PGVaultError {
    /// ``RepositoryLock/acquire(store:kind:command:timing:)`` found the repository locked.
    public var isRepositoryLocked: Bool { underlying is RepositoryLockedError }
}

/// The state of a held lock, shared by its owner and its refreshing thread
/// (which holds this, not the ``RepositoryLock``, so dropping the lock
/// releases it).
private final class LockHolder: @unchecked Sendable {
    let store: any ObjectStore
    let key: String
    let timing: RepositoryLock.Timing
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var record: RepositoryLockRecord
    /// When the object got its current `refreshedAt` (the time others judge it by).
    private var lastRefreshed: Date
    private var lost: String?
    private var stopping = false
    private var threadRunning = false
    private var deleted = false
    /// Serializes the object's rewrites and its delete, so a refresh never
    /// puts the object back after the release deleted it.
    private let writing = NSLock()

    init(store: any ObjectStore, key: String, record: RepositoryLockRecord, written: Date, timing: RepositoryLock.Timing) {
        self.store = store
        self.key = key
        self.record = record
        lastRefreshed = written
        self.timing = timing
    }

    func startRefreshing() {
        condition.withLock { threadRunning = true }
        let thread = Thread { [self] in
            while waitForNextRefresh() {
                do {
                    try refresh()
                } catch {
                    // A failed rewrite is retried at the next turn; a lost
                    // lock stays lost (the owner learns it from checkHeld).
                    if condition.withLock({ lost != nil }) { break }
                }
            }
            condition.withLock {
                threadRunning = false
                condition.broadcast()
            }
        }
        thread.name = "pgvault lock refresh"
        thread.stackSize = 1 << 18
        thread.start()
    }

    /// Waits `refreshEvery`; false once the lock is being released.
    private func waitForNextRefresh() -> Bool {
        condition.withLock {
            let deadline = Date().addingTimeInterval(timing.refreshEvery)
            while !stopping, condition.wait(until: deadline) {}
            return !stopping
        }
    }

    func refresh() throws {
        writing.lock()
        defer { writing.unlock() }
        let (current, last, released) = condition.withLock { (record, lastRefreshed, stopping) }
        if released { return }
        try checkHeld()
        let now = Date()
        // Past `staleAfter` another run may have removed this lock as stale
        // and gone on: writing it again would hide that, not undo it.
        guard now.timeIntervalSince(last) <= timing.staleAfter else {
            throw lose("it could not be refreshed for more than \(DurationText.format(timing.staleAfter)), so another run may have removed it as stale")
        }
        guard try store.head(key) != nil else {
            throw lose("its object '\(key)' was removed (by `pgvault repo unlock`, or as stale by another run)")
        }
        var updated = current
        updated.refreshedAt = ISO8601.format(now)
        try store.put(key, bytes: try updated.encoded())
        condition.withLock {
            record = updated
            lastRefreshed = now
        }
    }

    func checkHeld() throws {
        if let reason = condition.withLock({ lost }) { throw lostError(reason) }
    }

    private func lose(_ reason: String) -> PGVaultError {
        condition.withLock { lost = lost ?? reason }
        return lostError(reason)
    }

    private func lostError(_ reason: String) -> PGVaultError {
        .io("the lock on repository '\(store.location)' was lost: \(reason); stop, since a prune may be deleting what this run uses, and run the command again")
    }

    func release() throws {
        condition.withLock {
            stopping = true
            condition.broadcast()
            while threadRunning { condition.wait() }
        }
        writing.lock()
        defer { writing.unlock() }
        guard !condition.withLock({ deleted }) else { return }
        try store.delete(key)
        condition.withLock { deleted = true }
    }
}

extension RepositoryLock {
    /// Acquires, retrying for up to `patience` while the repository is
    /// locked: two runs that start together may both back off (the lock's
    /// rule), and a prune's lock can be a short one. Then the error names the
    /// holder as ``acquire(store:kind:command:timing:)``'s does.
    static func acquire(store: any ObjectStore, kind: Kind, command: String, patience: TimeInterval) throws -> RepositoryLock {
        let deadline = Date().addingTimeInterval(patience)
        var pause = 0.2
        while true {
            do {
                return try acquire(store: store, kind: kind, command: command)
            } catch let error as PGVaultError where error.isRepositoryLocked && Date().addingTimeInterval(pause) < deadline {
                try Cancellation.check()
                Thread.sleep(forTimeInterval: pause * Double.random(in: 0.5...1.5))
                pause = min(pause * 2, 5)
            }
        }
    }
}
