import Foundation
import HTTPClient
import S3Client
import Testing

/// SigV4 against AWS's published test suite (sigv4-test-suite/README.md) and
/// the worked examples of the S3 documentation.
@Suite("SigV4: AWS's test vectors")
struct SigV4VectorTests {
    @Test("the vector folder is there")
    func vectorsPresent() {
        #expect(SigV4Vector.names.count >= 15)
    }

    @Test("header signing: canonical request, string to sign, signature", arguments: SigV4Vector.names)
    func headerSigning(_ name: String) throws {
        let vector = try SigV4Vector(name)
        let added = try vector.signer.authorizationHeaders(for: vector.request, date: vector.date)
        var signed = vector.request
        signed.headers += added.filter { $0.name != "Authorization" }
        let canonical = SigV4.canonicalRequest(signed).text
        #expect(canonical == (try vector.file("header-canonical-request.txt")))
        #expect(try vector.signer.stringToSign(canonicalRequest: canonical, timestamp: SigV4.timestamp(vector.date)) == (try vector.file("header-string-to-sign.txt")))
        let authorization = try #require(added.first { $0.name == "Authorization" }?.value)
        #expect(authorization.hasSuffix("Signature=" + (try vector.file("header-signature.txt"))))
    }

    @Test("query signing (presigned links): canonical request and signature", arguments: SigV4Vector.names)
    func querySigning(_ name: String) throws {
        let vector = try SigV4Vector(name)
        // A presigned link carries no x-amz-content-sha256 header.
        var request = vector.request
        request.headers.removeAll { $0.name.lowercased() == "x-amz-content-sha256" }
        let query = try vector.signer.presignedQuery(for: request, expires: vector.expires, date: vector.date)
        var signed = request
        signed.query = query.filter { $0.0 != "X-Amz-Signature" }
        #expect(SigV4.canonicalRequest(signed).text == (try vector.file("query-canonical-request.txt")))
        #expect(query.last?.0 == "X-Amz-Signature")
        #expect(query.last?.1 == (try vector.file("query-signature.txt")))
    }

    static let example = AWSCredentials(
        accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", source: "AWS's S3 documentation")
    static let exampleDate = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    /// "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", S3 API reference.
    @Test("S3's presigned-URL example: GET examplebucket/test.txt for 86400 s")
    func s3PresignExample() throws {
        let signer = SigV4(credentials: Self.example, region: "us-east-1")
        let request = SigV4.Request(
            method: "GET", path: "/test.txt", headers: [HTTPHeader("Host", "examplebucket.s3.amazonaws.com")], payloadHash: SigV4.unsignedPayload)
        let query = try signer.presignedQuery(for: request, expires: 86400, date: Self.exampleDate)
        #expect(query.last?.1 == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    /// "Authenticating Requests: Using the Authorization Header": the GET Object and ListObjects examples.
    @Test("S3's header-signing examples: GET with a Range, a bucket listing")
    func s3HeaderExamples() throws {
        let signer = SigV4(credentials: Self.example, region: "us-east-1")
        let get = SigV4.Request(
            method: "GET", path: "/test.txt",
            headers: [
                HTTPHeader("Host", "examplebucket.s3.amazonaws.com"), HTTPHeader("Range", "bytes=0-9"),
                HTTPHeader("x-amz-content-sha256", SigV4.emptyPayloadHash),
            ], payloadHash: SigV4.emptyPayloadHash)
        let getAuthorization = try signer.authorizationHeaders(for: get, date: Self.exampleDate).last?.value ?? ""
        #expect(getAuthorization.hasSuffix("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"))
        let list = SigV4.Request(
            method: "GET", path: "/", query: [("max-keys", "2"), ("prefix", "J")],
            headers: [HTTPHeader("Host", "examplebucket.s3.amazonaws.com"), HTTPHeader("x-amz-content-sha256", SigV4.emptyPayloadHash)],
            payloadHash: SigV4.emptyPayloadHash)
        let listAuthorization = try signer.authorizationHeaders(for: list, date: Self.exampleDate).last?.value ?? ""
        #expect(listAuthorization.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
    }

    @Test("the credentials' descriptions name the key and its source, never the secret or the token")
    func redacted() {
        let credentials = AWSCredentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "s3cr3t-value", sessionToken: "t0ken-value", source: "the environment")
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in [credentials.description, "\(credentials)", String(reflecting: credentials), dumped] {
            #expect(text.contains("AKIDEXAMPLE"))
            #expect(!text.contains("s3cr3t"))
            #expect(!text.contains("t0ken"))
        }
    }
}
