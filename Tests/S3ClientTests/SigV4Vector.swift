import CryptoDigest
import Foundation
import HTTPClient
import S3Client
import TestSupport

/// One case of AWS's SigV4 test suite (sigv4-test-suite/README.md), read from its files.
struct SigV4Vector: CustomStringConvertible {
    static let folder = RepoPaths.root + "/Tests/S3ClientTests/sigv4-test-suite"
    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasSuffix(".md") }.sorted()
    }

    let name: String
    let signer: SigV4
    let date: Date
    let expires: Int
    let request: SigV4.Request

    var description: String { name }

    func file(_ name: String) throws -> String {
        try String(contentsOfFile: "\(Self.folder)/\(self.name)/\(name)", encoding: .utf8)
    }

    init(_ name: String) throws {
        self.name = name
        let dir = "\(Self.folder)/\(name)"
        let context = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/context.json"))) as! [String: Any]
        let credentials = context["credentials"] as! [String: String]
        signer = SigV4(
            credentials: AWSCredentials(
                accessKeyId: credentials["access_key_id"]!, secretAccessKey: credentials["secret_access_key"]!,
                sessionToken: credentials["token"], source: "the test suite"),
            region: context["region"] as! String, service: context["service"] as! String)
        date = ISO8601DateFormatter().date(from: context["timestamp"] as! String)!
        expires = context["expiration_in_seconds"] as! Int

        let text = try String(contentsOfFile: dir + "/request.txt", encoding: .utf8)
        let (head, body) = text.range(of: "\n\n").map { (String(text[..<$0.lowerBound]), String(text[$0.upperBound...])) } ?? (text, "")
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        let method = String(requestLine.prefix { $0 != " " })
        let target = String(requestLine.dropFirst(method.count + 1).dropLast(" HTTP/1.1".count))
        let (path, queryText) = target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) } ?? (target, "")
        let query: [(String, String)] = queryText.isEmpty ? [] : queryText.split(separator: "&").map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
        var headers = lines.filter { !$0.isEmpty }.map { line in
            let colon = line.firstIndex(of: ":")!
            return HTTPHeader(String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        var payloadHash = SigV4.emptyPayloadHash
        if context["sign_body"] as? Bool == true {
            payloadHash = try SHA2.hex(of: Array(body.utf8))
            headers.append(HTTPHeader("X-Amz-Content-Sha256", payloadHash))
        }
        request = SigV4.Request(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
    }
}
