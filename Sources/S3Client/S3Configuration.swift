import Foundation

/// Where and as whom pgvault talks S3, found the way AWS's own tools find it
/// (docs/storage.md, "S3 configuration"):
///
/// - endpoint: `--s3-endpoint`, else `AWS_ENDPOINT_URL_S3`, else
///   `AWS_ENDPOINT_URL`, else the profile's `endpoint_url`, else AWS
///   (`https://s3.<region>.amazonaws.com`);
/// - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's
///   `region`, else `us-east-1` when an endpoint was given;
/// - addressing: `PGVAULT_S3_ADDRESSING` (`path` or `virtual`), else the
///   profile's `s3.addressing_style`, else path-style with an endpoint
///   (MinIO, Ceph, moto) and virtual-hosted on AWS;
/// - credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+
///   `AWS_SESSION_TOKEN`), else the profile (`AWS_PROFILE`, default
///   `default`) in the credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
///   default `~/.aws/credentials`), else in the config file
///   (`AWS_CONFIG_FILE`, default `~/.aws/config`).
public struct S3Configuration: Sendable, CustomStringConvertible {
    public enum Addressing: String, Sendable { case path, virtual }

    /// `http` or `https`.
    public var scheme: String
    public var host: String
    public var port: Int?
    public var region: String
    public var addressing: Addressing
    public var credentials: AWSCredentials

    public init(scheme: String, host: String, port: Int?, region: String, addressing: Addressing, credentials: AWSCredentials) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.region = region
        self.addressing = addressing
        self.credentials = credentials
    }

    /// The endpoint as a URL, for messages (it holds no secret).
    public var endpoint: String { "\(scheme)://\(host)\(port.map { ":\($0)" } ?? "")" }

    public var description: String { "\(endpoint) (region \(region), \(addressing)-style, \(credentials))" }

    /// Resolves the configuration from `environment` and the shared files
    /// (read from the paths the environment names). `endpoint` is the
    /// `--s3-endpoint` option. Throws ``S3ConfigurationError`` naming what is
    /// missing or wrong and where it came from.
    public static func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment, endpoint option: String? = nil
    ) throws(S3ConfigurationError) -> S3Configuration {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let profileName = nonEmpty(environment["AWS_PROFILE"]) ?? "default"
        let profileChosen = nonEmpty(environment["AWS_PROFILE"]) != nil
        let configPath = nonEmpty(environment["AWS_CONFIG_FILE"]) ?? home + "/.aws/config"
        let credentialsPath = nonEmpty(environment["AWS_SHARED_CREDENTIALS_FILE"]) ?? home + "/.aws/credentials"
        let configFile = try read(configPath)
        let credentialsFile = try read(credentialsPath)
        let config = configFile?.profile(profileName, configStyle: true) ?? [:]
        let credentialsSection = credentialsFile?.profile(profileName, configStyle: false)
        if profileChosen, configFile?.profile(profileName, configStyle: true) == nil, credentialsSection == nil {
            throw S3ConfigurationError(
                "AWS_PROFILE names the profile '\(profileName)', which is in neither \(credentialsPath) nor \(configPath); add it there or set AWS_PROFILE to an existing profile")
        }

        // Endpoint.
        let endpointSources: [(String?, String)] = [
            (option, "--s3-endpoint"), (environment["AWS_ENDPOINT_URL_S3"], "AWS_ENDPOINT_URL_S3"),
            (environment["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL"), (config["endpoint_url"], "endpoint_url of profile '\(profileName)' in \(configPath)"),
        ]
        let endpoint = endpointSources.first { nonEmpty($0.0) != nil }.map { ($0.0!, $0.1) }

        // Region.
        let region =
            nonEmpty(environment["AWS_REGION"]) ?? nonEmpty(environment["AWS_DEFAULT_REGION"]) ?? nonEmpty(config["region"])
            ?? (endpoint != nil ? "us-east-1" : nil)
        guard let region else {
            throw S3ConfigurationError(
                "no AWS region: set AWS_REGION (or region in profile '\(profileName)' of \(configPath)), or give an endpoint with --s3-endpoint or AWS_ENDPOINT_URL_S3")
        }

        var scheme = "https"
        var host = "s3.\(region).amazonaws.com"
        var port: Int?
        if let (text, source) = endpoint {
            guard let url = URLComponents(string: text), let s = url.scheme?.lowercased(), s == "http" || s == "https",
                let h = url.host, !h.isEmpty, url.path.isEmpty || url.path == "/", url.query == nil, url.user == nil
            else {
                throw S3ConfigurationError(
                    "the S3 endpoint '\(text)' (from \(source)) is not an http:// or https:// URL of a host (like https://minio.example:9000); correct it")
            }
            (scheme, host, port) = (s, h, url.port)
        }

        // Addressing.
        let addressingText = nonEmpty(environment["PGVAULT_S3_ADDRESSING"]) ?? nonEmpty(config["s3.addressing_style"])
        let addressing: Addressing
        switch addressingText?.lowercased() {
        case nil, "auto": addressing = endpoint != nil ? .path : .virtual
        case "path": addressing = .path
        case "virtual": addressing = .virtual
        case let other?:
            throw S3ConfigurationError("the S3 addressing style '\(other)' (PGVAULT_S3_ADDRESSING or s3.addressing_style) is neither 'path' nor 'virtual'")
        }

        let credentials = try findCredentials(
            environment, profileName: profileName, credentials: credentialsSection, credentialsPath: credentialsPath,
            config: config, configPath: configPath)
        return S3Configuration(scheme: scheme, host: host, port: port, region: region, addressing: addressing, credentials: credentials)
    }

    private static func findCredentials(
        _ environment: [String: String], profileName: String, credentials: [String: String]?, credentialsPath: String,
        config: [String: String], configPath: String
    ) throws(S3ConfigurationError) -> AWSCredentials {
        let id = nonEmpty(environment["AWS_ACCESS_KEY_ID"])
        let secret = nonEmpty(environment["AWS_SECRET_ACCESS_KEY"])
        if let id, let secret {
            return AWSCredentials(
                accessKeyId: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"],
                source: "the environment (AWS_ACCESS_KEY_ID)")
        }
        if id != nil || secret != nil {
            let missing = id == nil ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY"
            throw S3ConfigurationError("\(id == nil ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") is set but \(missing) is not; set both, or neither to use a profile")
        }
        for (section, path) in [(credentials, credentialsPath), (config, configPath)] {
            guard let section, let id = nonEmpty(section["aws_access_key_id"]) else { continue }
            guard let secret = nonEmpty(section["aws_secret_access_key"]) else {
                throw S3ConfigurationError("profile '\(profileName)' in \(path) has aws_access_key_id but no aws_secret_access_key; add it")
            }
            return AWSCredentials(
                accessKeyId: id, secretAccessKey: secret, sessionToken: section["aws_session_token"],
                source: "profile '\(profileName)' in \(path)")
        }
        throw S3ConfigurationError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put aws_access_key_id and aws_secret_access_key in profile '\(profileName)' of \(credentialsPath) (choose the profile with AWS_PROFILE)")
    }

    private static func read(_ path: String) throws(S3ConfigurationError) -> AWSSharedFile? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw S3ConfigurationError("cannot read the AWS file \(path); check its permissions")
        }
        return AWSSharedFile(path: path, text: text)
    }

    private static func nonEmpty(_ text: String?) -> String? {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        return text
    }
}

/// A configuration that cannot be used: what is missing or wrong, where it
/// came from, and the fix. Never holds a secret.
public struct S3ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
