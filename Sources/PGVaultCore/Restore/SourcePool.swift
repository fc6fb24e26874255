import Foundation
import PGClient

/// One archive reader per worker thread (a source is not shared between threads).
final class SourcePool: @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    private var byThread: [ObjectIdentifier: ArchiveSource] = [:]

    init(path: String) { self.path = path }

    func source() throws -> ArchiveSource {
        let key = ObjectIdentifier(Thread.current)
        if let s = lock.withLock({ byThread[key] }) { return s }
        let s = try Archive.open(path)
        lock.withLock { byThread[key] = s }
        return s
    }
}
