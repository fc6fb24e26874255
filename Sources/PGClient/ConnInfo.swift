import CLibPQ
import Foundation

/// Helpers over libpq's own conninfo parser. pgvault never parses or builds a
/// conninfo string itself: the user's `--dbname` goes to libpq as it is, with
/// `expand_dbname`, so URIs, key=value strings, the PG* environment variables and
/// `.pgpass` all behave exactly as they do for psql and pg_dump.
public enum ConnInfo {
    /// The user's conninfo with every secret removed, for logs, manifests and
    /// error messages. Returns `"<invalid conninfo>"` when libpq cannot parse it,
    /// rather than echoing text that may hold a password.
    public static func redacted(_ conninfo: String) -> String {
        guard let options = parse(conninfo) else { return "<invalid conninfo>" }
        let shown = options.filter { !secretKeywords.contains($0.key) }
        if shown.isEmpty { return "(defaults from the environment)" }
        return shown.map { "\($0.key)=\(quoteValue($0.value))" }.joined(separator: " ")
    }

    /// The keywords set explicitly in `conninfo`, in libpq's order, or nil when
    /// libpq rejects the string. The message of the rejection is in `error`.
    public static func parse(_ conninfo: String) -> [(key: String, value: String)]? {
        (try? parseOrThrow(conninfo)) ?? nil
    }

    /// Like ``parse(_:)`` but throws libpq's reason for rejecting the string.
    public static func parseOrThrow(_ conninfo: String) throws -> [(key: String, value: String)] {
        var errmsg: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errmsg) else {
            let reason = errmsg.map { String(cString: $0) } ?? "out of memory"
            if let errmsg { PQfreemem(errmsg) }
            throw PGError(
                kind: .connection,
                message: "invalid connection string: \(reason.trimmingTrailingNewlines())",
                hint: "Give --dbname a conninfo string (\"host=... dbname=...\") or a URI (postgresql://user@host/db).")
        }
        defer { PQconninfoFree(options) }
        var result: [(key: String, value: String)] = []
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                result.append((String(cString: keyword), String(cString: value)))
            }
            cursor += 1
        }
        return result
    }

    /// The database `conninfo` names, known before connecting, as libpq picks
    /// it: its dbname (a key=value string's or a URI's path), else PGDATABASE,
    /// else the user name (its user, else PGUSER, else the login name). For
    /// reports of a run that failed or was interrupted before it connected.
    public static func databaseName(_ conninfo: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let given = parse(conninfo) ?? []
        func value(_ key: String, _ variable: String) -> String? {
            let v = given.last(where: { $0.key == key })?.value ?? environment[variable]
            return v?.isEmpty == false ? v : nil
        }
        if let dbname = value("dbname", "PGDATABASE") { return dbname }
        if let user = value("user", "PGUSER") { return user }
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "unknown"
    }

    /// Keywords whose values must never be shown or stored.
    public static let secretKeywords: Set<String> = ["password", "sslpassword", "sslkey"]

    /// A conninfo value quoted as libpq expects (single quotes, backslash escapes).
    public static func quoteValue(_ value: String) -> String {
        if !value.isEmpty, value.allSatisfy({ !$0.isWhitespace && $0 != "'" && $0 != "\\" }) {
            return value
        }
        return "'" + value.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'") + "'"
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == " " { s = s.dropLast() }
        return String(s)
    }

    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(count)
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
