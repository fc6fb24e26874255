/// Identity files as `age-keygen` writes them: `#` comments (the creation
/// time and the public key), blank lines, and one `AGE-SECRET-KEY-1...` per
/// line. Reading them is pure; the caller reads the file.
public enum AgeIdentityFile {
    /// Every identity in `text`. `source` names the file in errors
    /// (e.g. the path given to `--identity`).
    public static func parse(_ text: String, source: String) throws(AgeError) -> [AgeIdentity] {
        var identities: [AgeIdentity] = []
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
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

    /// The text `age-keygen` writes for `identity`; `created` is the
    /// timestamp to show (age-keygen's form: 2006-01-02T15:04:05Z).
    public static func render(_ identity: AgeIdentity, created: String) -> String {
        "# created: \(created)\n# public key: \(identity.recipient)\n\(identity.secretKeyText)\n"
    }
}
