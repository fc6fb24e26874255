import Foundation

/// Asks the kernel to read a directory archive's members into the page cache
/// a little ahead of the loaders, so that on a cold cache a loader does not
/// wait on the disk at the start of each member while the server idles.
///
/// Within one member the kernel's own read-ahead keeps up with a sequential
/// read; what it cannot know is which file comes next. At 1,000 partitions a
/// cold restore opens a thousand small members, and each first read was a
/// disk seek on the loader's thread. The members are advised here
/// (`posix_fadvise(POSIX_FADV_WILLNEED)`, on a thread of its own: opening a
/// cold file reads its inode) in the order the scheduler gives out loads,
/// and at most `windowBytes` ahead of the loads begun. Nothing is held in
/// this process: the pages are the kernel's, and a member's first
/// ``perMemberBytes`` only (the kernel reads on from there as the loader
/// does).
///
/// Only a directory archive on a local file system is advised. A tar archive
/// is one sequential file, and a repository has ``ObjectReadAhead``.
final class ArchivePrefetch: @unchecked Sendable {
    /// Bytes of a member advised at most.
    static let perMemberBytes: Int64 = 8 << 20

    struct Member: Sendable {
        var path: String
        /// The bytes advised: the member's first ``perMemberBytes`` at most.
        var bytes: Int64
    }

    private let members: [Member]
    private let windowBytes: Int64
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var begun: Int64 = 0
    private var stopped = false
    private var advisedCount = 0

    /// Nil unless `source` is a directory on this machine; `members` in the
    /// order the loads will begin, with their sizes in the archive.
    init?(_ source: ArchiveLocation, members: [(name: String, bytes: Int64)], windowBytes: Int64 = 64 << 20) {
        guard case .path(let root) = source, !members.isEmpty else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        self.members = members.compactMap { name, bytes in
            // The archive reader refuses names that leave the folder; so does this.
            (try? MemberPath.validate(name)) == nil ? nil : Member(path: root + "/" + name, bytes: Self.advised(bytes))
        }
        self.windowBytes = windowBytes
    }

    /// What a member of `bytes` counts against the window.
    static func advised(_ bytes: Int64) -> Int64 { max(0, min(bytes, perMemberBytes)) }

    /// Starts advising on a thread of its own.
    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "prefetch"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// A loader began members of these sizes: the window moves on.
    func began(bytes: [Int64]) {
        condition.lock()
        begun += bytes.reduce(0) { $0 + Self.advised($1) }
        condition.broadcast()
        condition.unlock()
    }

    /// Stops advising (the restore ended or failed).
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Members advised so far (for tests).
    var advised: Int {
        condition.lock()
        defer { condition.unlock() }
        return advisedCount
    }

    /// Waits until `count` members are advised or advising has ended; for tests.
    func waitForAdvised(_ count: Int, timeout: TimeInterval) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while advisedCount < count && !stopped && advisedCount < members.count && condition.wait(until: deadline) {}
        return advisedCount
    }

    private func run() {
        var ahead: Int64 = 0
        for member in members {
            condition.lock()
            while !stopped && ahead - begun >= windowBytes { condition.wait() }
            let stop = stopped
            condition.unlock()
            if stop { return }
            // Advice only: a member that cannot be opened is the loader's to report.
            let fd = open(member.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if fd >= 0 {
                _ = posix_fadvise(fd, 0, off_t(member.bytes), POSIX_FADV_WILLNEED)
                close(fd)
            }
            ahead += member.bytes
            condition.lock()
            advisedCount += 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
