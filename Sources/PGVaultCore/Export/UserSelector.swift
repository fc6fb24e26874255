import Foundation
import PGClient

/// How `--user` names a user: a numeric id, a public_id (UUID), an email, or
/// `username#discriminator`.
public enum UserSelector: Sendable, Equatable, CustomStringConvertible {
    case id(Int64)
    case publicID(String)
    case email(String)
    case tag(username: String, discriminator: String)

    /// Reads the form from the text: all digits → id; a UUID → public_id;
    /// contains `@` → email; `name#1234` → username#discriminator.
    public init(parsing raw: String) throws {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let id = Int64(text) else {
                throw UserExportError.invalidSelector(input: raw, reason: "is too large for a user id (bigint)")
            }
            self = .id(id)
        } else if Self.isUUID(text) {
            self = .publicID(text.lowercased())
        } else if text.contains("@") {
            self = .email(text)
        } else if let hash = text.lastIndex(of: "#") {
            let name = String(text[..<hash]), discriminator = String(text[text.index(after: hash)...])
            guard !name.isEmpty, discriminator.count == 4, discriminator.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw UserExportError.invalidSelector(
                    input: raw, reason: "is not username#discriminator (the discriminator is 4 digits, e.g. alice#0001)")
            }
            self = .tag(username: name, discriminator: discriminator)
        } else {
            throw UserExportError.invalidSelector(
                input: raw,
                reason: "is not a user id, a public_id (UUID), an email or username#discriminator")
        }
    }

    public var description: String {
        switch self {
        case let .id(id): "id \(id)"
        case let .publicID(uuid): "public_id \(uuid)"
        case let .email(email): "email \(email)"
        case let .tag(name, discriminator): "username#discriminator \(name)#\(discriminator)"
        }
    }

    /// The name of the form, for messages.
    var form: String {
        switch self {
        case .id: "id"
        case .publicID: "public_id"
        case .email: "email"
        case .tag: "username#discriminator"
        }
    }

    static func isUUID(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return parts.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// The user's id, looked up through an index (users' primary key, public_id,
    /// email or username+discriminator unique indexes). Throws
    /// ``UserExportError/unknownUser(input:form:)`` when no user matches.
    public func resolveID(_ conn: PGConnection, input: String) throws -> Int64 {
        let result: QueryResult
        switch self {
        case let .id(id):
            result = try conn.query("SELECT id FROM users WHERE id = $1", [String(id)])
        case let .publicID(uuid):
            result = try conn.query("SELECT id FROM users WHERE public_id = $1::uuid", [uuid])
        case let .email(email):
            // Emails are stored lowercased; the exact match uses the unique
            // constraint's index, the lower() match idx_users_email.
            result = try conn.query("""
                SELECT id FROM users WHERE email = $1 OR email = lower($1)
                UNION
                SELECT id FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL
                ORDER BY id
                """, [email])
        case let .tag(name, discriminator):
            result = try conn.query(
                "SELECT id FROM users WHERE username = $1 AND discriminator = $2", [name, discriminator])
        }
        let ids = try result.rows.map { try $0.int64(0) }
        guard let first = ids.first else { throw UserExportError.unknownUser(input: input, form: form) }
        guard ids.count == 1 else {
            throw UserExportError.ambiguousUser(input: input, form: form, ids: ids)
        }
        return first
    }
}

/// The export's own errors, as ``PGVaultError``s of the kind they mean.
public enum UserExportError {
    /// Text of none of --user's forms (docs/export-format.md: exit 64).
    public static func invalidSelector(input: String, reason: String) -> PGVaultError {
        .usage("--user '\(input)' \(reason)")
    }

    /// No user in the database matches (exit 2).
    public static func unknownUser(input: String, form: String) -> PGVaultError {
        PGVaultError(.server, "no user matches --user '\(input)' (looked up as \(form)); nothing was written")
    }

    public static func ambiguousUser(input: String, form: String, ids: [Int64]) -> PGVaultError {
        PGVaultError(
            .server,
            "--user '\(input)' (\(form)) matches \(ids.count) users (ids \(ids.map(String.init).joined(separator: ", "))); give the id instead")
    }

    public static func cancelled(reason: String) -> PGVaultError {
        PGVaultError(.interrupted, "export cancelled: \(reason)")
    }
}
