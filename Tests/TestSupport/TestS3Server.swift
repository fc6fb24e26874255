import Foundation
import HTTPClient
import PGVaultCore
import S3Client

#if canImport(Glibc)
import Glibc
#endif

/// moto's S3 server (PyPI `moto[server]`, installed by scripts/bootstrap.sh
/// into /opt/pgvault-moto), started once per test process on 127.0.0.1 with
/// request authentication ON, and stopped when the process exits.
///
/// moto checks signatures only against access keys its IAM knows, and
/// counts requests before it starts checking (`INITIAL_NO_AUTH_ACTION_COUNT`,
/// default: never). So the harness starts it unchecked, creates an IAM user
/// with an allow-all policy and an access key through moto's IAM API, then
/// turns checking on for every later request (`POST /moto-api/reset-auth`
/// with `0`). From then on a wrong secret gets `SignatureDoesNotMatch` and an
/// unknown key `InvalidAccessKeyId`, as from AWS.
///
/// Environment: `PGVAULT_MOTO_HOME` (default /opt/pgvault-moto).
public struct TestS3Server: Sendable {
    public let port: UInt16
    public let accessKeyId: String
    let secretAccessKey: String

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The server, started on first use.
    public static func shared() throws -> TestS3Server { try motoRegistry.server() }

    /// A second moto server that never checks requests, started on first
    /// use: moto (5.x) cannot check a pre-signed request while its checking
    /// is on (its IAM check reads only the Authorization header and answers
    /// 500), so a pre-signed link is downloaded from this one. Signatures
    /// are checked against AWS's published examples instead (SigV4VectorTests,
    /// ExportS3Tests.presignedURLShape).
    public static func unchecked() throws -> TestS3Server { try uncheckedRegistry.server() }

    /// The credentials the harness created (or a wrong `secret`), for `endpoint`.
    public func configuration(endpoint: String? = nil, secret: String? = nil) -> S3Configuration {
        let url = URLComponents(string: endpoint ?? self.endpoint)!
        return S3Configuration(
            scheme: url.scheme!, host: url.host!, port: url.port, region: "us-east-1", addressing: .path,
            credentials: AWSCredentials(accessKeyId: accessKeyId, secretAccessKey: secret ?? secretAccessKey, source: "the test harness"))
    }

    /// The environment that points pgvault (or ``S3Configuration/resolve``) at this server.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKeyId, "AWS_SECRET_ACCESS_KEY": secretAccessKey, "AWS_ENDPOINT_URL_S3": endpoint, "AWS_REGION": "us-east-1"]
    }

    /// A fresh, empty bucket for one test.
    public func makeBucket(_ prefix: String = "t") throws -> String {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try S3Client(configuration: configuration(), bucket: name).createBucket()
        return name
    }
}

private let motoRegistry = MotoRegistry(checking: true)
private let uncheckedRegistry = MotoRegistry(checking: false)

private final class MotoRegistry: @unchecked Sendable {
    /// Turn request checking on once the harness's access key exists.
    let checking: Bool
    init(checking: Bool) { self.checking = checking }
    private let lock = NSLock()
    private var started: Result<TestS3Server, Error>?
    private var pid: pid_t = 0

    func server() throws -> TestS3Server {
        lock.lock()
        defer { lock.unlock() }
        if let started { return try started.get() }
        let result = Result { try start() }
        started = result
        return try result.get()
    }

    private func start() throws -> TestS3Server {
        let home = ProcessInfo.processInfo.environment["PGVAULT_MOTO_HOME"] ?? "/opt/pgvault-moto"
        let program = home + "/bin/moto_server"
        guard FileManager.default.isExecutableFile(atPath: program) else {
            throw TestS3Error("\(program) is missing: run scripts/bootstrap.sh (it installs moto[server] into \(home))")
        }
        let port = try TCPSockets.freePort()
        let log = try TestScratch.path("moto-\(port).log")
        pid = try Subprocess.spawn([program, "-H", "127.0.0.1", "-p", String(port)], stdoutPath: log, stderrPath: log)
        _ = TestScratch.root  // its exit handler first, so it runs after ours
        if checking { atexit { motoRegistry.stop() } } else { atexit { uncheckedRegistry.stop() } }
        let http = HTTPClient(timeouts: HTTPTimeouts(connectMilliseconds: 1000, stallSeconds: 10))
        let base = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<300 {
            if (try? http.perform(HTTPRequest(method: "GET", url: base + "/moto-api/data.json")))?.status == 200 {
                ready = true
                break
            }
            usleep(100_000)
        }
        guard ready else { throw TestS3Error("moto_server did not answer on port \(port) within 30 s; see \(log)") }

        // Unchecked still: moto routes by the service in the credential scope, so the IAM calls carry a dummy one.
        func iam(_ form: [(String, String)]) throws -> [UInt8] {
            let body = (form + [("Version", "2010-05-08")]).map { "\($0.0)=\(percent($0.1))" }.joined(separator: "&")
            let response = try http.perform(
                HTTPRequest(
                    method: "POST", url: base + "/",
                    headers: [
                        HTTPHeader("Content-Type", "application/x-www-form-urlencoded"),
                        HTTPHeader("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"),
                    ]), body: .bytes(Array(body.utf8)))
            guard response.isSuccess else { throw TestS3Error("moto's IAM refused \(form[0].1): \(String(decoding: response.body, as: UTF8.self))") }
            return response.body
        }
        _ = try iam([("Action", "CreateUser"), ("UserName", "pgvault-test")])
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        _ = try iam([("Action", "PutUserPolicy"), ("UserName", "pgvault-test"), ("PolicyName", "all"), ("PolicyDocument", policy)])
        let key = String(decoding: try iam([("Action", "CreateAccessKey"), ("UserName", "pgvault-test")]), as: UTF8.self)
        func field(_ name: String) throws -> String {
            guard let start = key.range(of: "<\(name)>"), let end = key.range(of: "</\(name)>", range: start.upperBound..<key.endIndex) else {
                throw TestS3Error("moto's CreateAccessKey answer has no \(name)")
            }
            return String(key[start.upperBound..<end.lowerBound])
        }
        let server = TestS3Server(port: port, accessKeyId: try field("AccessKeyId"), secretAccessKey: try field("SecretAccessKey"))
        guard checking else { return server }
        // Authentication on, from the next request on.
        let on = try http.perform(
            HTTPRequest(method: "POST", url: base + "/moto-api/reset-auth", headers: [HTTPHeader("Content-Type", "text/plain")]),
            body: .bytes(Array("0".utf8)))
        guard on.isSuccess else { throw TestS3Error("moto did not turn authentication on: HTTP \(on.status)") }
        return server
    }

    func stop() {
        lock.lock()
        let pid = self.pid
        self.pid = 0
        lock.unlock()
        guard pid > 0 else { return }
        // SIGKILL: the child may have inherited a mask that blocks SIGTERM, and it keeps nothing worth a clean stop.
        kill(pid, SIGKILL)
        _ = Subprocess.wait(pid)
    }
}

private func percent(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? text
}

public struct TestS3Error: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
