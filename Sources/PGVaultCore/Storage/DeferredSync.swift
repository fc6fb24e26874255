import Foundation
import Support

#if canImport(Glibc)
import Glibc
#endif

/// The fsyncs of a ``LocalFolderStore``'s writes put off to one ``flush()``:
/// for a staging folder that nobody sees until its last object (an
/// archive's manifest.json) is written, each member need not be durable at
/// its own commit, only before that last object. A backup of 10,000
/// partitions otherwise waits on some 20,000 fsyncs (a file and its folder
/// per member) one after another, 5–7 ms each on a virtual disk.
///
/// `flush()` does what `pg_dump -Fd` does at its end, in two passes: it
/// asks the kernel to start writing back every file (`posix_fadvise`
/// DONTNEED, which starts the write-back without waiting and drops the
/// pages once clean), then fsyncs each file and each folder, several at
/// once, so the journal commits them together. An error of either names
/// the file; nothing is published then.
public final class DeferredSync: Sendable {
    private let pending = Locked((files: [String](), folders: Set<String>()))

    public init() {}

    func file(_ path: String) { pending.withLock { $0.files.append(path) } }
    func folder(_ path: String) { pending.withLock { _ = $0.folders.insert(path) } }

    /// What waits for the next flush (for tests).
    var waiting: (files: [String], folders: Set<String>) { pending.value }

    /// How many fsyncs run at once.
    static let threads = 8

    /// Makes every file and folder recorded so far durable. Blocks its thread.
    public func flush() throws {
        let (files, folders) = pending.withLock { p in
            defer { p = ([], []) }
            return (p.files, p.folders.sorted())
        }
        for path in files {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileError(operation: "open for fsync", path: path) }
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            close(fd)
        }
        try Self.concurrently(files) { path in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileError(operation: "open for fsync", path: path) }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw FileError(operation: "fsync", path: path) }
        }
        try Self.concurrently(folders) { try Files.syncDirectory($0) }
    }

    /// `body` for every item, over up to ``threads`` threads of their own;
    /// the first error is thrown once all have stopped.
    private static func concurrently(_ items: [String], _ body: @escaping @Sendable (String) throws -> Void) throws {
        guard !items.isEmpty else { return }
        let next = Locked(0)
        let failure = Locked<(any Error)?>(nil)
        let done = DispatchGroup()
        for _ in 0..<min(threads, items.count) {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                while failure.value == nil {
                    let k = next.withLock { n in defer { n += 1 }; return n }
                    guard k < items.count else { return }
                    do { try body(items[k]) } catch { failure.withLock { $0 = $0 ?? error } }
                }
            }
            thread.name = "pgvault-fsync"
            thread.stackSize = 1 << 18
            thread.start()
        }
        done.wait()
        if let error = failure.value { throw error }
    }
}
