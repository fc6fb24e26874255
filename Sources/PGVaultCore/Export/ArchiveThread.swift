import ArchiveIO
import Foundation

/// The zip of an export package, written on a thread of its own: libarchive's
/// work (deflate, CRC-32, writes) runs there while the exporting thread reads
/// rows and serializes JSON. Calls are queued and run in order; the queue
/// holds at most `maxQueuedBytes` of data, so memory stays bounded.
///
/// An error on the archive's thread is reported by the next call made here
/// (and by `close()`). `abort()` (or dropping the object) stops the thread
/// and leaves the archive unfinished, never with a trailer.
final class ArchiveThread: @unchecked Sendable {
    typealias Job = (ArchiveWriter) throws -> Void

    private static let maxQueuedBytes = 2 << 20

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [(job: Job, bytes: Int)] = []
    private var queuedBytes = 0
    private var failure: (any Error)?
    private var aborted = false
    private var running = true
    private var started: Result<Void, any Error>?

    /// Creates the zip at `path` (which must not exist; see `ArchiveWriter`).
    init(path: String, options: String) throws {
        let thread = Thread { [self] in
            var archive: ArchiveWriter?
            do {
                archive = try ArchiveWriter(path: path, format: .zip, options: options)
                condition.withLock {
                    started = .success(())
                    condition.broadcast()
                }
                serve(archive!)
            } catch {
                condition.withLock { started = .failure(error) }  // broadcast below
            }
            // Release the archive (an unfinished one is marked failed) on this thread.
            archive = nil
            condition.withLock {
                running = false
                condition.broadcast()
            }
        }
        thread.name = "pgvault-export-zip"
        thread.stackSize = 1 << 20
        thread.start()
        try condition.withLock {
            while started == nil, running { condition.wait() }
            return started ?? .failure(ExportFiles.Failure(message: "the export's archive thread did not start"))
        }.get()
    }

    /// The thread holds on to this object until `close()` or `abort()`: its
    /// owner calls one of them.
    /// Queues `job` (holding `bytes` of data).
    func enqueue(bytes: Int = 0, _ job: @escaping Job) throws {
        try condition.withLock {
            while queuedBytes > 0, queuedBytes + bytes > Self.maxQueuedBytes, failure == nil, running {
                condition.wait()
            }
            if let failure { throw failure }
            guard running, !aborted else { throw ExportFiles.Failure(message: "the export's archive has been closed or abandoned") }
            jobs.append((job, bytes))
            queuedBytes += bytes
            condition.broadcast()
        }
    }

    /// Runs everything queued, then the archive's `close()` (trailer, fsync),
    /// and waits for it; throws the first error of any of them.
    func close() throws {
        try enqueue { try $0.close() }
        try condition.withLock {
            while running, failure == nil, !jobs.isEmpty { condition.wait() }
            if let failure { throw failure }
        }
        finish()
    }

    /// Stops the thread, dropping what is queued; the archive stays
    /// unfinished. Returns when the thread no longer uses the archive.
    func abort() {
        condition.withLock {
            aborted = true
            jobs.removeAll()
            queuedBytes = 0
            condition.broadcast()
            while running { condition.wait() }
        }
    }

    private func finish() {
        condition.withLock {
            aborted = true
            condition.broadcast()
            while running { condition.wait() }
        }
    }

    private func serve(_ archive: ArchiveWriter) {
        while true {
            let next: (job: Job, bytes: Int)? = condition.withLock {
                while jobs.isEmpty, !aborted { condition.wait() }
                return aborted || failure != nil ? nil : jobs.first
            }
            guard let next else { break }
            var error: (any Error)?
            do { try next.job(archive) } catch let e { error = e }
            condition.withLock {
                if !jobs.isEmpty { jobs.removeFirst() }
                queuedBytes = max(0, queuedBytes - next.bytes)
                if let error, failure == nil { failure = error }
                condition.broadcast()
            }
        }
    }
}
