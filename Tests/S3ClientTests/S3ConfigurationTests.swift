import Foundation
import S3Client
import Testing
import TestSupport

/// The AWS way of finding the endpoint, region, addressing and credentials,
/// from an environment and shared files the test writes.
@Suite("S3 configuration: environment, profiles, shared files")
struct S3ConfigurationTests {
    /// A home folder with the given `~/.aws/config` and `~/.aws/credentials` (nil: no file).
    static func home(_ name: String, config: String? = nil, credentials: String? = nil) throws -> TestScratch.Folder {
        let folder = try TestScratch.Folder(name)
        try FileManager.default.createDirectory(atPath: folder[".aws"], withIntermediateDirectories: true)
        if let config { try config.write(toFile: folder[".aws/config"], atomically: true, encoding: .utf8) }
        if let credentials { try credentials.write(toFile: folder[".aws/credentials"], atomically: true, encoding: .utf8) }
        return folder
    }

    static func failure(_ environment: [String: String], endpoint: String? = nil) -> String {
        do {
            _ = try S3Configuration.resolve(environment: environment, endpoint: endpoint)
            return "resolved"
        } catch {
            return error.message
        }
    }

    @Test("the environment's keys, AWS_REGION over AWS_DEFAULT_REGION, virtual-hosted on AWS")
    func environment() throws {
        let home = try Self.home("s3cfg-env")
        defer { home.remove() }
        let config = try S3Configuration.resolve(environment: [
            "HOME": home.path, "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "sessTKN42",
            "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2",
        ])
        #expect(config.endpoint == "https://s3.eu-west-1.amazonaws.com")
        #expect(config.region == "eu-west-1")
        #expect(config.addressing == .virtual)
        #expect(config.credentials.accessKeyId == "AKIDENV")
        #expect(config.credentials.hasSessionToken)
        #expect(config.credentials.source == "the environment (AWS_ACCESS_KEY_ID)")
        #expect(!"\(config)".contains("envsecret"))
        #expect(!"\(config)".contains("sessTKN42"))
    }

    @Test("endpoint: --s3-endpoint over AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL; path-style and us-east-1 by default then")
    func endpoints() throws {
        let home = try Self.home("s3cfg-endpoint")
        defer { home.remove() }
        var environment = [
            "HOME": home.path, "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S",
            "AWS_ENDPOINT_URL": "http://general:1000", "AWS_ENDPOINT_URL_S3": "http://minio.local:9000",
        ]
        var config = try S3Configuration.resolve(environment: environment)
        #expect(config.endpoint == "http://minio.local:9000")
        #expect(config.port == 9000)
        #expect(config.region == "us-east-1")
        #expect(config.addressing == .path)
        config = try S3Configuration.resolve(environment: environment, endpoint: "https://r2.example/")
        #expect(config.endpoint == "https://r2.example")
        environment["AWS_ENDPOINT_URL_S3"] = nil
        #expect(try S3Configuration.resolve(environment: environment).host == "general")
        environment["PGVAULT_S3_ADDRESSING"] = "virtual"
        #expect(try S3Configuration.resolve(environment: environment).addressing == .virtual)
        environment["PGVAULT_S3_ADDRESSING"] = "sideways"
        #expect(Self.failure(environment).contains("'sideways'"))
    }

    @Test("a bad endpoint is refused, naming where it came from", arguments: ["minio:9000", "ftp://x", "http://h/some/path", "http://user:pw@h"])
    func badEndpoint(_ text: String) throws {
        let home = try Self.home("s3cfg-bad-endpoint")
        defer { home.remove() }
        let message = Self.failure(["HOME": home.path, "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_ENDPOINT_URL_S3": text])
        #expect(message.contains("'\(text)'"))
        #expect(message.contains("AWS_ENDPOINT_URL_S3"))
    }

    @Test("profiles: AWS_PROFILE in the credentials file, region and addressing from the config file")
    func profiles() throws {
        let home = try Self.home(
            "s3cfg-profile",
            config: """
                [default]
                region = us-west-1
                # a comment
                [profile backup]
                region = eu-central-1
                endpoint_url = https://s3.backup.example
                s3 =
                  addressing_style = virtual
                """,
            credentials: """
                [default]
                aws_access_key_id = AKIDDEFAULT
                aws_secret_access_key = defaultsecret
                ; another comment
                [backup]
                aws_access_key_id = AKIDBACKUP
                aws_secret_access_key = backupsecret
                aws_session_token = backuptoken
                """)
        defer { home.remove() }
        let fallback = try S3Configuration.resolve(environment: ["HOME": home.path])
        #expect(fallback.credentials.accessKeyId == "AKIDDEFAULT")
        #expect(fallback.region == "us-west-1")
        #expect(fallback.credentials.source == "profile 'default' in \(home.path)/.aws/credentials")

        let backup = try S3Configuration.resolve(environment: ["HOME": home.path, "AWS_PROFILE": "backup"])
        #expect(backup.credentials.accessKeyId == "AKIDBACKUP")
        #expect(backup.credentials.hasSessionToken)
        #expect(backup.region == "eu-central-1")
        #expect(backup.host == "s3.backup.example")
        #expect(backup.addressing == .virtual)
        #expect(!"\(backup)".contains("backupsecret"))

        let missing = Self.failure(["HOME": home.path, "AWS_PROFILE": "nightly"])
        #expect(missing.contains("'nightly'"))
        #expect(missing.contains(".aws/credentials"))
    }

    @Test("AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files; keys in the config file count too")
    func filesMoved() throws {
        let folder = try TestScratch.Folder("s3cfg-moved")
        defer { folder.remove() }
        try "[profile ops]\nregion = ap-south-1\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = cfgsecret\n"
            .write(toFile: folder["cfg"], atomically: true, encoding: .utf8)
        let config = try S3Configuration.resolve(environment: [
            "HOME": folder.path + "/nowhere", "AWS_PROFILE": "ops", "AWS_CONFIG_FILE": folder["cfg"],
            "AWS_SHARED_CREDENTIALS_FILE": folder["creds-none"],
        ])
        #expect(config.credentials.accessKeyId == "AKIDCONFIG")
        #expect(config.credentials.source == "profile 'ops' in \(folder["cfg"])")
        #expect(config.region == "ap-south-1")
    }

    @Test("missing pieces: one key of the pair, no credentials at all, no region")
    func missingPieces() throws {
        let home = try Self.home("s3cfg-missing")
        defer { home.remove() }
        let half = Self.failure(["HOME": home.path, "AWS_ACCESS_KEY_ID": "A", "AWS_REGION": "x"])
        #expect(half.contains("AWS_SECRET_ACCESS_KEY is not"))
        let none = Self.failure(["HOME": home.path, "AWS_REGION": "x"])
        #expect(none.contains("no S3 credentials"))
        #expect(none.contains("AWS_PROFILE"))
        let noRegion = Self.failure(["HOME": home.path, "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"])
        #expect(noRegion.contains("no AWS region"))
    }
}
