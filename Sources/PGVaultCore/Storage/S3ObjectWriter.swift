import Foundation
import PGClient
import S3Client
import Support

/// An object being written to S3. Bytes gather in a buffer of one part; a
/// full part goes up on a thread of its own while the next one fills, with
/// at most `partsInFlight` parts uploading (a `write` waits for a free slot),
/// so a writer holds at most `partSize × (partsInFlight + 1)` bytes. An object
/// that fits one part is one PUT at the commit; a larger one is a multipart
/// upload, made visible by CompleteMultipartUpload at the commit and
/// discarded by AbortMultipartUpload on `abort()`, on a failed part, and
/// when the writer is dropped. Parts are retried by ``S3Client``; one that
/// still fails fails the writer.
///
/// `ifAbsent`: `If-None-Match: *` on the PUT or the completion. For a
/// service that ignores that header, a HEAD before the completion refuses a
/// key that exists already; that check is racy (another writer can complete
/// between the HEAD and ours), the header is not.
final class S3ObjectWriter: ObjectWriter {
    let store: S3ObjectStore
    let key: String
    let ifAbsent: Bool
    private(set) var bytesWritten: Int64 = 0
    private var buffer: [UInt8] = []
    private var uploadId: String?
    private var nextPart = 1
    private var finished = false
    private let slots: DispatchSemaphore
    private let inFlight = DispatchGroup()
    /// The parts uploaded so far, and the first failure of a part.
    private let results = Locked<(parts: [S3UploadedPart], failure: (any Error)?)>(([], nil))

    init(store: S3ObjectStore, key: String, ifAbsent: Bool) {
        self.store = store
        self.key = key
        self.ifAbsent = ifAbsent
        slots = DispatchSemaphore(value: store.partsInFlight)
    }

    deinit { if !finished { abort() } }

    private var s3Key: String { store.prefix + key }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "write after commit or abort")
        var rest = bytes
        while !rest.isEmpty {
            let n = min(rest.count, store.partSize - buffer.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<n]))
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            bytesWritten += Int64(n)
            if buffer.count == store.partSize {
                try send(buffer)
                buffer = []
                buffer.reserveCapacity(store.partSize)
            }
        }
    }

    /// Starts uploading one part on its own thread, once a slot is free.
    private func send(_ part: [UInt8]) throws {
        if uploadId == nil {
            uploadId = try store.translating(key, "write") { try store.client.createMultipartUpload(s3Key) }
        }
        try throwFailure()
        slots.wait()
        let (number, id, client, objectKey) = (nextPart, uploadId!, store.client, s3Key)
        nextPart += 1
        let token = Cancellation.current
        let results = self.results
        let slots = self.slots
        inFlight.enter()
        let thread = Thread { [inFlight] in
            Cancellation.adopt(token)
            do {
                let uploaded = try client.uploadPart(objectKey, uploadId: id, number: number, bytes: part)
                results.withLock { $0.parts.append(uploaded) }
            } catch {
                results.withLock { if $0.failure == nil { $0.failure = error } }
            }
            slots.signal()
            inFlight.leave()
        }
        thread.name = "s3-part"
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func throwFailure() throws {
        if let failure = results.value.failure {
            try store.translating(key, "write") { throw failure }
        }
    }

    @discardableResult
    func commit() throws -> Int64 {
        precondition(!finished, "commit after commit or abort")
        do {
            if uploadId == nil {
                try store.translating(key, "write") { try store.client.putObject(s3Key, bytes: buffer, ifAbsent: ifAbsent) }
            } else {
                if !buffer.isEmpty { try send(buffer) }
                buffer = []
                inFlight.wait()
                try throwFailure()
                if ifAbsent, try store.head(key) != nil {
                    throw PGVaultError(.io, "object '\(key)' already exists in '\(store.location)'; it is never overwritten", underlying: ObjectExistsError(key: key))
                }
                let parts = results.value.parts
                try store.translating(key, "write") {
                    try store.client.completeMultipartUpload(s3Key, uploadId: uploadId!, parts: parts, ifAbsent: ifAbsent)
                }
            }
        } catch {
            abort()
            throw error
        }
        finished = true
        buffer = []
        return bytesWritten
    }

    func abort() {
        guard !finished else { return }
        finished = true
        buffer = []
        inFlight.wait()
        if let uploadId {
            // On a thread of its own, with no cancellation token: after Ctrl-C
            // the caller's thread is cancelled, and its HTTP client would stop
            // the abort itself before it went out. Best effort: `prune`
            // aborts what is left (a service that stopped answering), and so
            // does a bucket lifecycle rule (docs/storage.md).
            let (client, key, done) = (store.client, s3Key, DispatchSemaphore(value: 0))
            let thread = Thread {
                try? client.abortMultipartUpload(key, uploadId: uploadId)
                done.signal()
            }
            thread.name = "s3-abort"
            thread.start()
            done.wait()
        }
    }
}
