/// Quoting for the places where SQL text must carry a name or a constant that
/// cannot travel as a parameter (DDL, COPY, partition bounds).
public enum SQL {
    /// A quoted identifier: `Job Runs` → `"Job Runs"`, `a"b` → `"a""b"`.
    /// Every identifier pgvault puts in SQL goes through here, always quoted,
    /// so mixed case, spaces and keywords are kept exactly.
    public static func ident(_ name: String) -> String {
        "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }

    /// `"schema"."table"`.
    public static func qualified(_ schema: String, _ name: String) -> String {
        ident(schema) + "." + ident(name)
    }

    /// A string constant. Doubles single quotes; text holding a backslash is
    /// written as an E'' constant with the backslash doubled, so the result is the
    /// same whatever standard_conforming_strings is.
    public static func literal(_ value: String) -> String {
        let quoted = value.replacingAll("'", with: "''")
        if value.contains("\\") {
            return "E'" + quoted.replacingAll("\\", with: "\\\\") + "'"
        }
        return "'" + quoted + "'"
    }
}
