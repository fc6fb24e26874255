/// An access key for AWS Signature Version 4, and where it came from. The
/// secret (and the session token) never appear in a description, a debug
/// description or a reflection (`dump`): only the key id, which AWS treats
/// as an identifier, and the source, so a refusal can say which credentials
/// to check.
public struct AWSCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let accessKeyId: String
    let secretAccessKey: String
    let sessionToken: String?
    /// Where the key was found: `the environment (AWS_ACCESS_KEY_ID)`, `profile 'x' in /home/u/.aws/credentials`.
    public let source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken.flatMap { $0.isEmpty ? nil : $0 }
        self.source = source
    }

    public var hasSessionToken: Bool { sessionToken != nil }

    public var description: String {
        "access key \(accessKeyId)\(sessionToken == nil ? "" : " with a session token") from \(source)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyId": accessKeyId, "secretAccessKey": "<redacted>", "source": source])
    }
}
