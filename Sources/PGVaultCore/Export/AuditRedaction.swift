import Foundation

/// Removes other users' private data from the free-form JSON of audit-log
/// entries (`changes`, `options`) and from their `reason` text before they go
/// into a user's export. An entry where the user acted may record a row of
/// another user (e.g. `to_jsonb` of a `users` row, with email and password
/// hash) or another user's message. docs/export-format.md, "Privacy", states
/// these rules; the tests check them.
///
/// Every removed value is replaced by the string `"[redacted]"` (the key
/// stays, so the shape of the change is still visible).
struct AuditRedaction {
    /// The exporting user.
    let userID: String
    /// The exporting user's own email (kept where it appears).
    let ownEmail: String
    /// Emails (lowercased) that belong to other users, as found in the
    /// snapshot for the candidate addresses of the text being redacted.
    var otherUsersEmails: Set<String> = []

    static let marker = "[redacted]"
    static let emailMarker = "[redacted email]"

    /// Keys whose values never leave the database, whoever they belong to.
    static let secretKeys: Set<String> = [
        "password_hash", "password", "password_digest", "mfa_secret", "totp_secret",
        "token", "access_token", "refresh_token", "ip", "ip_address",
    ]

    /// Of a `users`-shaped object that is not the exporting user, only these stay.
    static let publicUserKeys: Set<String> = ["id", "username", "discriminator"]

    /// Fields of a message-shaped object that hold what its author wrote.
    static let messageBodyKeys: Set<String> = ["content", "embeds", "attachments"]

    /// Prefixes of password-hash encodings (PHC strings, crypt(3), Django).
    static let hashPrefixes = ["$argon2", "$2a$", "$2b$", "$2y$", "$scrypt$", "$pbkdf2", "$1$", "$5$", "$6$", "pbkdf2_", "argon2$", "bcrypt$"]

    func redact(_ value: ExportJSON) -> ExportJSON {
        switch value {
        case let .string(s): return .string(redactText(s))
        case let .array(items): return .array(items.map(redact))
        case let .object(fields): return .object(redactObject(fields))
        case .null, .bool, .number: return value
        }
    }

    private func redactObject(_ fields: [ExportJSON.Field]) -> [ExportJSON.Field] {
        let keys = Set(fields.map(\.key))
        let idText = fields.first { $0.key == "id" }.flatMap { Self.scalarText($0.value) }
        let isUserRow = keys.contains("password_hash") || (keys.contains("username") && keys.contains("discriminator"))
        let isOtherUser = isUserRow && idText != userID
        let authorText = fields.first { $0.key == "author_id" }.flatMap { Self.scalarText($0.value) }
        let isOthersMessage = authorText != nil && authorText != userID && !keys.isDisjoint(with: Self.messageBodyKeys)

        return fields.map { field in
            let key = field.key
            if Self.secretKeys.contains(key.lowercased()) { return .init(key, .string(Self.marker)) }
            if key.lowercased() == "email" {
                if case let .string(email) = field.value, email.lowercased() == ownEmail.lowercased(), !isOtherUser {
                    return field
                }
                return field.value == .null ? field : .init(key, .string(Self.marker))
            }
            if isOtherUser && !Self.publicUserKeys.contains(key) {
                return field.value == .null ? field : .init(key, .string(Self.marker))
            }
            if isOthersMessage && Self.messageBodyKeys.contains(key) {
                return field.value == .null ? field : .init(key, .string(Self.marker))
            }
            return .init(key, redact(field.value))
        }
    }

    /// A string: a password hash goes entirely; another user's email address
    /// inside it is replaced.
    func redactText(_ s: String) -> String {
        if Self.looksLikePasswordHash(s) { return Self.marker }
        guard !otherUsersEmails.isEmpty, s.contains("@") else { return s }
        var out = s
        for candidate in Self.emailCandidates(in: s) where otherUsersEmails.contains(candidate.lowercased()) {
            out = out.replacingEvery(candidate, with: Self.emailMarker)
        }
        return out
    }

    static func looksLikePasswordHash(_ s: String) -> Bool {
        hashPrefixes.contains { s.hasPrefix($0) }
    }

    static func scalarText(_ value: ExportJSON) -> String? {
        switch value {
        case let .string(s): s
        case let .number(n): n
        default: nil
        }
    }

    /// Things that look like email addresses in `text` (the users table's
    /// own check: local@domain.tld).
    static func emailCandidates(in text: String) -> [String] {
        guard text.contains("@") else { return [] }
        func isLocal(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || "._%+-".contains(c)) }
        func isDomain(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || ".-".contains(c)) }
        let chars = Array(text)
        var found: [String] = []
        for (i, c) in chars.enumerated() where c == "@" {
            var start = i
            while start > 0, isLocal(chars[start - 1]) { start -= 1 }
            var end = i + 1
            while end < chars.count, isDomain(chars[end]) { end += 1 }
            while end > i + 1, chars[end - 1] == "." { end -= 1 }
            guard start < i, end > i + 1 else { continue }
            let domain = chars[(i + 1)..<end]
            guard domain.contains(".") else { continue }
            found.append(String(chars[start..<end]))
        }
        return found
    }

    /// Every string in a JSON value, for collecting email candidates.
    static func strings(in value: ExportJSON, into out: inout [String]) {
        switch value {
        case let .string(s): out.append(s)
        case let .array(items): for item in items { strings(in: item, into: &out) }
        case let .object(fields): for field in fields { strings(in: field.value, into: &out) }
        case .null, .bool, .number: break
        }
    }
}

fileprivate extension String {
    func replacingEvery(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        out += rest
        return out
    }
}
