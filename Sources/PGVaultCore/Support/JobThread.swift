import Foundation
import PGClient

/// A resource (a zip being written, a zstd stream and its file) used only on
/// a thread of its own, and the jobs run on it in order, so that its blocking
/// C calls (deflate, zstd, write) overlap with what the caller does meanwhile
/// (reading COPY data, serializing JSON). The queue holds at most
/// `maxQueuedBytes` of data, so memory stays bounded: `enqueue` waits while it
/// is full.
///
/// An error on the thread is reported by the next call made here (and by
/// `close(last:)`); jobs queued after it are not run. `abort()` stops the
/// thread and drops what is queued. The resource is created and released on
/// the thread. The owner calls `close(last:)` or `abort()` exactly once
/// (the thread holds on to this object until then).
final class JobThread<Resource>: @unchecked Sendable {
    typealias Job = (Resource) throws -> Void

    private let name: String
    private let maxQueuedBytes: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [(job: Job, bytes: Int)] = []
    private var queuedBytes = 0
    private var failure: (any Error)?
    private var aborted = false
    private var running = true
    private var started: Result<Void, any Error>?

    /// Starts the thread and creates the resource on it with `make`; throws
    /// what `make` throws.
    init(name: String, maxQueuedBytes: Int, make: @escaping @Sendable () throws -> Resource) throws {
        self.name = name
        self.maxQueuedBytes = maxQueuedBytes
        // The owner's cancellation reaches this thread too: queued work
        // (zstd at a high level can take seconds) stops at the next job.
        let cancellation = Cancellation.current
        let thread = Thread { [self] in
            Cancellation.adopt(cancellation)
            var resource: Resource?
            do {
                resource = try make()
                condition.withLock {
                    started = .success(())
                    condition.broadcast()
                }
                serve(resource!)
            } catch {
                condition.withLock { started = .failure(error) }  // broadcast below
            }
            // Release the resource (an unfinished zip is marked failed) on this thread.
            resource = nil
            condition.withLock {
                running = false
                condition.broadcast()
            }
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        try condition.withLock {
            while started == nil, running { condition.wait() }
            return started ?? .failure(PGVaultError.io("the \(name) thread did not start"))
        }.get()
    }

    /// Queues `job`, which holds `bytes` of data until it has run.
    func enqueue(bytes: Int = 0, _ job: @escaping Job) throws {
        try condition.withLock {
            while queuedBytes > 0, queuedBytes + bytes > maxQueuedBytes, failure == nil, running {
                condition.wait()
            }
            if let failure { throw failure }
            guard running, !aborted else { throw PGVaultError.io("\(name): the work was closed or abandoned") }
            jobs.append((job, bytes))
            queuedBytes += bytes
            condition.broadcast()
        }
    }

    /// Runs everything queued, then `last` (a zip's trailer, a zstd frame's
    /// end), waits for them and stops the thread; throws the first error of
    /// any job.
    func close(last: @escaping Job) throws {
        defer { abort() }
        try enqueue(last)
        try condition.withLock {
            while running, failure == nil, !jobs.isEmpty { condition.wait() }
            if let failure { throw failure }
        }
    }

    /// Stops the thread, dropping what is queued. Returns when the thread no
    /// longer uses the resource.
    func abort() {
        condition.withLock {
            aborted = true
            jobs.removeAll()
            queuedBytes = 0
            condition.broadcast()
            while running { condition.wait() }
        }
    }

    private func serve(_ resource: Resource) {
        while true {
            let next: (job: Job, bytes: Int)? = condition.withLock {
                while jobs.isEmpty, !aborted { condition.wait() }
                return aborted || failure != nil ? nil : jobs.first
            }
            guard let next else { break }
            var error: (any Error)?
            do {
                try Cancellation.check()
                try next.job(resource)
            } catch let e { error = e }
            condition.withLock {
                if !jobs.isEmpty { jobs.removeFirst() }
                queuedBytes = max(0, queuedBytes - next.bytes)
                if let error, failure == nil { failure = error }
                condition.broadcast()
            }
        }
    }
}
