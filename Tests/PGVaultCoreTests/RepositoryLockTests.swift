import Foundation
@testable import PGVaultCore
import Support
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The repository lock on a real local folder store (docs/storage.md, "Locks").
@Suite("repository lock: shared and exclusive lock objects")
struct RepositoryLockTests {
    /// No settling pause: the local folder's listing never lags.
    static let quick = RepositoryLock.Timing(settle: 0)

    static func store(_ name: String) throws -> (LocalFolderStore, TestScratch.Folder) {
        let folder = try TestScratch.Folder(name)
        return (LocalFolderStore(root: folder.path), folder)
    }

    static func lockKeys(_ store: LocalFolderStore) throws -> [String] {
        try store.list(prefix: RepositoryLock.prefix).map(\.key)
    }

    /// Writes a lock object as another run would have.
    static func plant(
        _ store: LocalFolderStore, kind: RepositoryLock.Kind, command: String, host: String, pid: Int32,
        refreshed: Date = Date(), key: String = "locks/0123456789abcdef0123456789abcdef"
    ) throws {
        let record = RepositoryLockRecord(
            kind: kind, command: command, hostname: host, pid: pid,
            startedAt: "2026-12-04T10:00:00Z", refreshedAt: ISO8601.format(refreshed))
        try store.put(key, bytes: try record.encoded(), ifAbsent: true)
    }

    /// The pid of a process that has ended and been waited for.
    static func deadPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    struct NothingThrown: Error {}

    /// The error `body` throws, which must be a ``PGVaultError``.
    static func failure(_ body: () throws -> Void) throws -> PGVaultError {
        do {
            try body()
        } catch let error as PGVaultError {
            return error
        }
        Issue.record("expected an error")
        throw NothingThrown()
    }

    @Test("shared locks coexist, each an object under locks/, gone once released")
    func sharedCoexist() throws {
        let (store, folder) = try Self.store("lock-shared")
        defer { folder.remove() }
        let backup = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick)
        let restore = try RepositoryLock.acquire(store: store, kind: .shared, command: "restore", timing: Self.quick)
        #expect(try Self.lockKeys(store) == [backup.key, restore.key].sorted())
        #expect(backup.key.range(of: #"^locks/[0-9a-f]{32}$"#, options: .regularExpression) != nil)
        let record = try #require(try RepositoryLock.entries(in: store).first { $0.key == backup.key }?.record)
        #expect(record.kind == .shared)
        #expect(record.command == "backup")
        #expect(record.pid == getpid())
        #expect(record.hostname == ExportFiles.hostName)
        #expect(record.startedAt.hasSuffix("Z"))
        try backup.release()
        try backup.release()  // idempotent
        #expect(try Self.lockKeys(store) == [restore.key])
        try restore.release()
        #expect(try Self.lockKeys(store).isEmpty)
    }

    @Test("prune is refused while a backup holds a shared lock, with the holder named; released, prune gets in")
    func exclusiveRefusedWhileShared() throws {
        let (store, folder) = try Self.store("lock-excl")
        defer { folder.remove() }
        let backup = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick)
        let error = try Self.failure { _ = try RepositoryLock.acquire(store: store, kind: .exclusive, command: "prune", timing: Self.quick) }
        #expect(error.kind == .io)
        #expect(error.isRepositoryLocked)
        #expect(error.message.hasPrefix("repository '\(store.location)' is locked by backup (pid \(getpid()) on host \(ExportFiles.hostName), since "))
        #expect(error.message.hasSuffix("try again when it has finished, or if that process is gone run `pgvault repo unlock --repo \(store.location)`"))
        // The refused run took its own object away again.
        #expect(try Self.lockKeys(store) == [backup.key])
        try backup.release()
        let prune = try RepositoryLock.acquire(store: store, kind: .exclusive, command: "prune", timing: Self.quick)
        #expect(prune.removedStale.isEmpty)
        try prune.release()
    }

    @Test("a backup and a second prune are refused while prune holds the exclusive lock")
    func sharedRefusedWhileExclusive() throws {
        let (store, folder) = try Self.store("lock-excl2")
        defer { folder.remove() }
        try Self.plant(store, kind: .exclusive, command: "prune", host: "db1", pid: 1234)
        for kind in [RepositoryLock.Kind.shared, .exclusive] {
            let error = try Self.failure { _ = try RepositoryLock.acquire(store: store, kind: kind, command: "backup", timing: Self.quick) }
            #expect(error.message == """
                repository '\(store.location)' is locked by prune (pid 1234 on host db1, since 2026-12-04T10:00:00Z); \
                try again when it has finished, or if that process is gone run `pgvault repo unlock --repo \(store.location)`
                """)
        }
        #expect(try Self.lockKeys(store).count == 1)
        let removed = try RepositoryLock.removeAll(store: store)
        #expect(removed.map(\.record?.command) == ["prune"])
        let backup = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick)
        try backup.release()
    }

    @Test("a lock of this host whose process is gone is stale and removed; the same pid on another host is not")
    func deadProcessIsStale() throws {
        let (store, folder) = try Self.store("lock-dead")
        defer { folder.remove() }
        let pid = try Self.deadPid()
        try Self.plant(store, kind: .exclusive, command: "prune", host: ExportFiles.hostName, pid: pid)
        let backup = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick)
        #expect(backup.removedStale.count == 1)
        #expect("\(backup.removedStale.first.map { "\($0)" } ?? "")" == "removed the stale lock of prune (pid \(pid) on host \(ExportFiles.hostName), since 2026-12-04T10:00:00Z): its process (pid \(pid)) is gone from this host")
        #expect(try Self.lockKeys(store) == [backup.key])
        try backup.release()

        try Self.plant(store, kind: .exclusive, command: "prune", host: "elsewhere", pid: pid)
        let error = try Self.failure { _ = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick) }
        #expect(error.message.contains("locked by prune (pid \(pid) on host elsewhere"))
        #expect(try RepositoryLock.unlockStale(store: store).isEmpty)
    }

    @Test("a lock not refreshed for longer than staleAfter is stale, on any host")
    func oldRefreshIsStale() throws {
        let (store, folder) = try Self.store("lock-old")
        defer { folder.remove() }
        try Self.plant(store, kind: .exclusive, command: "prune", host: "elsewhere", pid: 77, refreshed: Date(timeIntervalSinceNow: -31 * 60))
        try Self.plant(store, kind: .shared, command: "backup", host: "elsewhere", pid: 78, refreshed: Date(timeIntervalSinceNow: -29 * 60),
                       key: "locks/ffffffffffffffffffffffffffffffff")
        let removed = try RepositoryLock.unlockStale(store: store)
        #expect(removed.map(\.entry.record?.command) == ["prune"])
        #expect(removed.first?.reason.contains("(more than 30m)") == true)
        // The backup refreshed 29 minutes ago is still held.
        let error = try Self.failure { _ = try RepositoryLock.acquire(store: store, kind: .exclusive, command: "prune", timing: Self.quick) }
        #expect(error.message.contains("locked by backup (pid 78 on host elsewhere"))
    }

    @Test("the holder's thread keeps its lock fresh; a lock left unrefreshed goes stale and its holder learns it is lost")
    func refreshKeepsFresh() throws {
        let (store, folder) = try Self.store("lock-refresh")
        defer { folder.remove() }
        // Generous against a loaded machine: a stall of 2 s would lose the lock.
        let refreshing = RepositoryLock.Timing(staleAfter: 2, refreshEvery: 0.1, settle: 0)
        let held = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: refreshing)
        let started = try #require(try RepositoryLock.entries(in: store).first?.record)
        Thread.sleep(forTimeInterval: 3)
        let refreshed = try #require(try RepositoryLock.entries(in: store).first?.record)
        #expect(refreshed.startedAt == started.startedAt)
        #expect(try #require(ISO8601.parse(refreshed.refreshedAt)) > Date(timeIntervalSinceNow: -2))
        let error = try Self.failure { _ = try RepositoryLock.acquire(store: store, kind: .exclusive, command: "prune", timing: refreshing) }
        #expect(error.isRepositoryLocked)
        try held.checkHeld()
        try held.release()

        let idle = RepositoryLock.Timing(staleAfter: 0.5, refreshEvery: 3600, settle: 0)
        let forgotten = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: idle)
        Thread.sleep(forTimeInterval: 1.0)
        let prune = try RepositoryLock.acquire(store: store, kind: .exclusive, command: "prune", timing: idle)
        #expect(prune.removedStale.map(\.entry.key) == [forgotten.key])
        let lost = try Self.failure { try forgotten.refresh() }
        #expect(lost.message.contains("the lock on repository '\(store.location)' was lost"))
        #expect(throws: PGVaultError.self) { try forgotten.checkHeld() }
        // The lost lock's refresh did not put its object back.
        #expect(try Self.lockKeys(store) == [prune.key])
        try prune.release()
    }

    @Test("a lock whose object was removed (repo unlock) is lost: its refresh does not write it back")
    func removedLockIsLost() throws {
        let (store, folder) = try Self.store("lock-removed")
        defer { folder.remove() }
        let backup = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick)
        try backup.refresh()
        try backup.checkHeld()
        #expect(try RepositoryLock.removeAll(store: store).map(\.key) == [backup.key])
        let lost = try Self.failure { try backup.refresh() }
        #expect(lost.message.contains("its object '\(backup.key)' was removed"))
        #expect(throws: PGVaultError.self) { try backup.checkHeld() }
        #expect(try Self.lockKeys(store).isEmpty)
        try backup.release()
    }

    @Test("a lock object that is not a lock record blocks everyone, named in the message, until removed by hand")
    func garbledBlocks() throws {
        let (store, folder) = try Self.store("lock-garbled")
        defer { folder.remove() }
        try store.put("locks/garbage", bytes: Array("not json".utf8))
        for kind in [RepositoryLock.Kind.shared, .exclusive] {
            let error = try Self.failure { _ = try RepositoryLock.acquire(store: store, kind: kind, command: "backup", timing: Self.quick) }
            #expect(error.message.hasPrefix("repository '\(store.location)' is locked by an unreadable lock object 'locks/garbage' (not a pgvault lock record"))
            #expect(error.message.hasSuffix("or if no pgvault is using the repository run `pgvault repo unlock --repo \(store.location)`"))
        }
        #expect(try RepositoryLock.unlockStale(store: store).isEmpty)
        #expect(try RepositoryLock.removeAll(store: store).map(\.key) == ["locks/garbage"])
        let backup = try RepositoryLock.acquire(store: store, kind: .shared, command: "backup", timing: Self.quick)
        try backup.release()
    }

    @Test("a lock record with a bad time or pid is unreadable, not trusted", arguments: [
        #"{"kind":"shared","command":"backup","hostname":"h","pid":1,"startedAt":"yesterday","refreshedAt":"2026-12-04T10:00:00Z"}"#,
        #"{"kind":"shared","command":"backup","hostname":"h","pid":0,"startedAt":"2026-12-04T10:00:00Z","refreshedAt":"2026-12-04T10:00:00Z"}"#,
        #"{"kind":"sometimes","command":"backup","hostname":"h","pid":1,"startedAt":"2026-12-04T10:00:00Z","refreshedAt":"2026-12-04T10:00:00Z"}"#,
    ])
    func badFieldsAreUnreadable(json: String) throws {
        let entry = RepositoryLockEntry(key: "locks/x", bytes: .success(Array(json.utf8)))
        #expect(entry.record == nil)
        #expect(RepositoryLockRules.conflicts(.shared, with: entry))
        #expect(RepositoryLockRules.staleness(of: entry, now: Date(), staleAfter: 0, host: "h") == nil)
    }

    @Test("an exclusive and a shared run racing to acquire never hold at once")
    func racingNeverBothHold() async throws {
        let (store, folder) = try Self.store("lock-race")
        defer { folder.remove() }
        let holding = Locked((exclusive: 0, shared: 0, overlaps: 0, acquired: 0))
        await withTaskGroup(of: Void.self) { group in
            for kind in [RepositoryLock.Kind.exclusive, .shared] {
                group.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread.detachNewThread {
                            for _ in 0..<50 {
                                guard let lock = try? RepositoryLock.acquire(store: store, kind: kind, command: "\(kind)", timing: Self.quick) else {
                                    usleep(UInt32.random(in: 0...500))
                                    continue
                                }
                                holding.withLock { state in
                                    if kind == .exclusive { state.exclusive += 1 } else { state.shared += 1 }
                                    if state.exclusive > 0 && state.shared > 0 { state.overlaps += 1 }
                                    state.acquired += 1
                                }
                                usleep(UInt32.random(in: 0...1000))
                                holding.withLock { state in
                                    if kind == .exclusive { state.exclusive -= 1 } else { state.shared -= 1 }
                                }
                                try? lock.release()
                            }
                            done.resume()
                        }
                    }
                }
            }
        }
        #expect(holding.value.overlaps == 0)
        #expect(holding.value.acquired > 0)
        #expect(try Self.lockKeys(store).isEmpty)
    }
}
