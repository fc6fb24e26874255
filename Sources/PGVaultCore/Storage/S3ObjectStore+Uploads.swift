import Foundation
import PGClient
import S3Client

extension S3ObjectStore {
    /// Aborts the multipart uploads in progress under the store's prefix:
    /// those a backup could not abort itself (the service stopped answering,
    /// the process was killed). Their parts are stored, billed, and no
    /// object: nothing lists or reads them. Only under prune's exclusive
    /// lock, when no writer of this repository runs; so the prefix must be
    /// the repository's alone (docs/runbooks/s3.md). Up to 1000 per call
    /// (one listing page); the next prune takes the rest.
    public func discardUnfinishedWrites() throws -> Int {
        let uploads: [(key: String, uploadId: String)]
        do {
            uploads = try client.listMultipartUploads(prefix: prefix)
        } catch let error as S3Error {
            throw PGVaultError(.io, "cannot list the unfinished multipart uploads in '\(location)' at \(client.configuration.endpoint)", underlying: error)
        }
        for upload in uploads {
            try Cancellation.check()
            let key = String(upload.key.dropFirst(prefix.count))
            try translating(key, "abort the unfinished upload of") { try client.abortMultipartUpload(upload.key, uploadId: upload.uploadId) }
        }
        return uploads.count
    }
}
