import Foundation
import HTTPClient

/// One uploaded part: its number, ETag and checksum, for the completion.
public struct S3UploadedPart: Sendable {
    public var number: Int
    public var etag: String
    public var checksum: String
}

extension S3Client {
    /// Starts a multipart upload (with SHA-256 part checksums); returns its upload id.
    public func createMultipartUpload(_ key: String) throws -> String {
        let (response, attempts) = try send("POST", key: key) {
            Attempt(
                query: [("uploads", "")],
                headers: [HTTPHeader("Content-Type", "application/octet-stream"), HTTPHeader("x-amz-checksum-algorithm", "SHA256")],
                body: [])
        }
        guard response.isSuccess, S3XML.error(response.body) == nil,
            let id = S3XML.elements(response.body)?.first(where: { $0.path.hasSuffix("/UploadId") })?.text, !id.isEmpty
        else { throw failure("POST \(name(key)) (start a multipart upload)", response, attempts: attempts) }
        if attempts > 1 {
            // An earlier attempt whose answer was lost may have started an
            // upload no one knows the id of; the key is this writer's alone.
            for other in try listMultipartUploads(prefix: key) where other.key == key && other.uploadId != id {
                try abortMultipartUpload(key, uploadId: other.uploadId)
            }
        }
        return id
    }

    /// Uploads part `number` (1-based) with its SHA-256 signed and as `x-amz-checksum-sha256`.
    public func uploadPart(_ key: String, uploadId: String, number: Int, bytes: [UInt8]) throws -> S3UploadedPart {
        let checksum = try Self.checksum(bytes)
        let (response, attempts) = try send("PUT", key: key) {
            Attempt(
                query: [("partNumber", String(number)), ("uploadId", uploadId)],
                headers: [HTTPHeader("x-amz-checksum-sha256", checksum)], body: bytes)
        }
        guard response.isSuccess, let etag = response.header("ETag") else {
            throw failure("PUT \(name(key)) (part \(number))", response, attempts: attempts)
        }
        return S3UploadedPart(number: number, etag: etag, checksum: checksum)
    }

    /// Makes the object from `parts`: it appears whole now. `ifAbsent` sends
    /// `If-None-Match: *` (412 when the key was taken meanwhile).
    public func completeMultipartUpload(_ key: String, uploadId: String, parts: [S3UploadedPart], ifAbsent: Bool) throws {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(Self.escape(part.etag))</ETag>"
            xml += "<ChecksumSHA256>\(part.checksum)</ChecksumSHA256></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let body = Array(xml.utf8)
        let (response, attempts) = try send("POST", key: key) {
            var attempt = Attempt(query: [("uploadId", uploadId)], headers: [HTTPHeader("Content-Type", "application/xml")], body: body)
            if ifAbsent { attempt.headers.append(HTTPHeader("If-None-Match", "*")) }
            return attempt
        }
        // A retry after an attempt whose answer was lost finds the upload already completed.
        if attempts > 1, S3XML.error(response.body)?.code == "NoSuchUpload", try headObject(key) != nil { return }
        guard response.isSuccess, S3XML.error(response.body) == nil else {
            throw failure("POST \(name(key)) (complete a multipart upload)", response, attempts: attempts)
        }
    }

    /// Discards an upload and its parts; one already gone is fine.
    public func abortMultipartUpload(_ key: String, uploadId: String) throws {
        // DELETE of the bucket itself (no key) would ask to delete the bucket.
        precondition(!key.isEmpty, "an upload is of a key")
        let (response, attempts) = try send("DELETE", key: key) { Attempt(query: [("uploadId", uploadId)]) }
        guard response.isSuccess || response.status == 404 else {
            throw failure("DELETE \(name(key)) (abort a multipart upload)", response, attempts: attempts)
        }
    }

    /// The upload ids of the multipart uploads in progress under `prefix` (for tests and cleanup).
    public func listMultipartUploads(prefix: String) throws -> [(key: String, uploadId: String)] {
        let (response, attempts) = try send("GET", key: nil) { Attempt(query: [("uploads", ""), ("prefix", prefix)]) }
        guard response.isSuccess, let elements = S3XML.elements(response.body) else {
            throw failure("GET \(name(prefix)) (list multipart uploads)", response, attempts: attempts)
        }
        // An Upload's Key and UploadId come in either order (moto sends the
        // id first): the pair is taken when the Upload element ends.
        var out: [(String, String)] = []
        var key = ""
        var id = ""
        for element in elements {
            switch element.path {
            case "ListMultipartUploadsResult/Upload/Key": key = element.text
            case "ListMultipartUploadsResult/Upload/UploadId": id = element.text
            case "ListMultipartUploadsResult/Upload":
                if !key.isEmpty, !id.isEmpty { out.append((key, id)) }
                (key, id) = ("", "")
            default: break
            }
        }
        return out
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
