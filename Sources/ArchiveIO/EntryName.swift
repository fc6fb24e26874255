/// The one naming rule for entries, applied when writing and when reading.
///
/// A name is safe when, as a relative path below an output folder, it can
/// only name something inside that folder: not empty, not absolute, no `..`
/// component, no backslash (a separator on Windows, so `..\x` could escape
/// there), no NUL byte, no drive letter. `.` components and repeated slashes
/// are harmless and dropped by `EntryName.components`.
enum EntryName {
    /// Why `name` is unsafe, phrased to follow "archive entry 'NAME' ...", or
    /// nil when it is safe. Only directories may name the folder itself ("./").
    static func problem(with name: String, isDirectory: Bool) -> String? {
        if name.isEmpty { return "has an empty name" }
        if name.utf8.contains(0) { return "contains a NUL byte" }
        if name.contains("\\") {
            return "contains a backslash, which is a path separator on Windows and could escape the output folder"
        }
        if name.hasPrefix("/") { return "is an absolute path, outside the output folder" }
        let bytes = Array(name.utf8.prefix(2))
        if bytes.count == 2, bytes[1] == UInt8(ascii: ":"), (bytes[0] | 0x20) >= UInt8(ascii: "a"),
            (bytes[0] | 0x20) <= UInt8(ascii: "z") {
            return "starts with a drive letter, outside the output folder"
        }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains("..") { return "escapes the output folder (contains '..')" }
        if !isDirectory && components(of: name).isEmpty { return "names no file inside the output folder" }
        return nil
    }

    /// The path components of a safe name, without empty and `.` ones.
    static func components(of name: String) -> [String] {
        name.split(separator: "/").filter { $0 != "." }.map(String.init)
    }
}
