import Foundation

/// The names of objects. A key is a `/`-separated relative name of plain
/// segments, the same on every store: what is a valid key on S3 must not
/// escape a local folder, so `..`, `.`, a leading `/`, empty segments and NUL
/// are refused before any store sees them.
public enum ObjectKey {
    /// A segment containing this is a write in progress of the local folder
    /// store (its temporary file): never a key, never listed.
    static let temporaryMarker = ".put-tmp-"

    /// Throws an archive error naming `key` unless it is a valid key.
    public static func validate(_ key: String) throws {
        guard !key.isEmpty else { throw invalid(key, "it is empty") }
        try validateSegments(key.split(separator: "/", omittingEmptySubsequences: false), key)
    }

    /// A listing prefix: "" (everything), a key, or a key's folders ending in `/`.
    public static func validatePrefix(_ prefix: String) throws {
        guard !prefix.isEmpty else { return }
        var segments = prefix.split(separator: "/", omittingEmptySubsequences: false)
        if prefix.hasSuffix("/") { segments.removeLast() }
        try validateSegments(segments, prefix)
    }

    private static func validateSegments(_ segments: [Substring], _ key: String) throws {
        if key.hasPrefix("/") { throw invalid(key, "it starts with '/' (keys are relative)") }
        if key.contains("\0") { throw invalid(key, "it contains a NUL byte") }
        for segment in segments {
            if segment.isEmpty { throw invalid(key, "it has an empty segment ('//' or a trailing '/')") }
            if segment == "." || segment == ".." { throw invalid(key, "it has a '\(segment)' segment") }
            if segment.contains(temporaryMarker) { throw invalid(key, "'\(temporaryMarker)' is reserved for writes in progress") }
        }
    }

    private static func invalid(_ key: String, _ reason: String) -> PGVaultError {
        PGVaultError.archive("'\(key)' is not a valid object key: \(reason); a key is a relative name of plain segments separated by '/', such as 'chat-20260101T000000.000Z/manifest.json'")
    }

    /// The part of `key` before its last `/` ("" for a top-level key).
    static func folder(of key: String) -> String {
        guard let slash = key.lastIndex(of: "/") else { return "" }
        return String(key[..<slash])
    }

    /// The part of `key` after its last `/`.
    static func leaf(of key: String) -> String {
        guard let slash = key.lastIndex(of: "/") else { return key }
        return String(key[key.index(after: slash)...])
    }
}
