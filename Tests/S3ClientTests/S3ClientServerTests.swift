import Foundation
import HTTPClient
import S3Client
import Testing
import TestSupport

/// The S3 requests against moto's server, with authentication on.
@Suite("S3 client against moto")
struct S3ClientServerTests {
    @Test("put, head, get (whole and ranged), list, delete; a multipart upload")
    func requests() throws {
        let server = try TestS3Server.shared()
        let client = S3Client(configuration: server.configuration(), bucket: try server.makeBucket())
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try client.putObject("a/b c+d.bin", bytes: bytes, ifAbsent: false)
        #expect(try client.headObject("a/b c+d.bin") == 1000)
        #expect(try client.headObject("a/none") == nil)
        var got: [UInt8] = []
        try client.getObject("a/b c+d.bin", range: 10..<20) { got += $0 }
        #expect(got == Array(bytes[10..<20]))
        let page = try client.listObjects(prefix: "a/", delimiter: "/", continuationToken: nil)
        #expect(page.objects == [S3ObjectSummary(key: "a/b c+d.bin", size: 1000)])
        try client.deleteObject("a/b c+d.bin")
        try client.deleteObject("a/b c+d.bin")
        #expect(try client.headObject("a/b c+d.bin") == nil)

        let part = [UInt8](repeating: 7, count: 5 << 20)
        let id = try client.createMultipartUpload("m")
        let parts = [try client.uploadPart("m", uploadId: id, number: 1, bytes: part), try client.uploadPart("m", uploadId: id, number: 2, bytes: [1, 2, 3])]
        try client.completeMultipartUpload("m", uploadId: id, parts: parts, ifAbsent: true)
        #expect(try client.headObject("m") == Int64(part.count + 3))
    }

    @Test("a wrong secret is refused with the service's code, naming the key and its source, never the secret")
    func wrongSecret() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket()
        let client = S3Client(configuration: server.configuration(secret: "not-the-secret-XYZ"), bucket: bucket)
        let error = try #require(throws: S3Error.self) { try client.putObject("k", bytes: [1], ifAbsent: false) }
        #expect(error.code == "SignatureDoesNotMatch")
        #expect(error.status == 403)
        #expect(error.attempts == 1)
        #expect(error.description.contains("the test harness"))
        #expect(error.description.contains(server.accessKeyId))
        #expect(!error.description.contains("not-the-secret-XYZ"))
    }
}
