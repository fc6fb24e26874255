import Foundation

/// Identity files as `age-keygen` writes them: `#` comments (the creation
/// time and the public key), blank lines, and one `AGE-SECRET-KEY-1...` per
/// line. Reading them is pure; the caller reads the file.
public enum AgeIdentityFile {
    /// Every identity in `text`. `source` names the file in errors
    /// (e.g. the path given to `--identity`).
    public static func parse(_ text: String, source: String) throws(AgeError) -> [AgeIdentity] {
        var identities: [AgeIdentity] = []
        var number = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            number += 1
            let trimmed = String(line).trimmingASCIIWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            do {
                identities.append(try AgeIdentity(parsing: trimmed))
            } catch {
                throw AgeError(.invalidIdentity, "\(source), line \(number): \(error.detail)")
            }
        }
        guard !identities.isEmpty else {
            throw AgeError(.invalidIdentity, "\(source) holds no AGE-SECRET-KEY-1... line (make one with age-keygen -o FILE)")
        }
        return identities
    }

    /// The text `age-keygen` writes for `identity`: when it was created
    /// (UTC, to the second), its public key, and the secret key.
    public static func render(_ identity: AgeIdentity, created: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return "# created: \(formatter.string(from: created))\n# public key: \(identity.recipient)\n\(identity.secretKeyText)\n"
    }
}
