import Foundation
import PGClient

/// Finds PostgreSQL's client programs (pg_dump, psql) of a version that can talk
/// to a given server, and runs them without putting a password on their command
/// line.
public struct PGTools: Sendable {
    public let binDir: String
    public let majorVersion: Int
    public let versionString: String

    /// `pg_dump` must be at least the server's major version. Looks in `pgBin`
    /// when given, else in the usual install folders (the server's major first)
    /// and PATH, and picks the lowest major that is at least `serverMajor`.
    /// A folder counts only with both pg_dump and pg_restore in it. The first
    /// folder of exactly the server's major ends the search: asking each
    /// program for its version is a process start (Debian's /usr/bin/pg_dump
    /// is a Perl wrapper, about 50 ms), paid on every backup.
    public static func locate(serverMajor: Int, serverVersion: String, pgBin: String?) throws -> PGTools {
        let candidates = candidateFolders(major: serverMajor, pgBin: pgBin)
        var found: [PGTools] = []
        var seen = Set<String>()
        for dir in candidates where seen.insert(realPath(dir + "/pg_dump")).inserted {
            guard FileManager.default.isExecutableFile(atPath: dir + "/pg_dump"),
                  FileManager.default.isExecutableFile(atPath: dir + "/pg_restore"),
                  let (major, text) = version(of: dir + "/pg_dump") else { continue }
            let tools = PGTools(binDir: dir, majorVersion: major, versionString: text)
            if major == serverMajor { return tools }
            found.append(tools)
        }
        if let best = found.filter({ $0.majorVersion >= serverMajor }).min(by: { $0.majorVersion < $1.majorVersion }) {
            return best
        }
        if let pgBin {
            let have = found.first.map { "pg_dump \($0.versionString) in \(pgBin)" } ?? "no usable pg_dump with pg_restore beside it in \(pgBin)"
            throw PGVaultError.io("\(have), but the server is PostgreSQL \(serverVersion): pg_dump must be at least version \(serverMajor). Point --pg-bin at PostgreSQL \(serverMajor)'s bin folder.")
        }
        let have = found.map { "\($0.versionString) (\($0.binDir))" }.joined(separator: ", ")
        throw PGVaultError.io("the server is PostgreSQL \(serverVersion) but the pg_dump found is \(have.isEmpty ? "none" : have): pg_dump must be at least version \(serverMajor). Install PostgreSQL \(serverMajor) client programs or pass --pg-bin DIR.")
    }

    /// Where PostgreSQL's programs of at least `major` may be, in the order
    /// they are tried: `pgBin` alone when given; else $PGVAULT_PG_BIN, the
    /// usual install folders (`major` first) and PATH. pg_dump's search and
    /// the restore drill's server programs (initdb, postgres) share it.
    static func candidateFolders(major: Int, pgBin: String?) -> [String] {
        if let pgBin { return [pgBin] }
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["PGVAULT_PG_BIN"] { candidates.append(env) }
        let home = ProcessInfo.processInfo.environment["PGVAULT_PG_HOME"] ?? "/opt/pgvault-pg"
        for m in [major, 16, 17, 18, 19, 20] where m >= major {
            candidates.append("/usr/lib/postgresql/\(m)/bin")
            candidates.append("\(home)/\(m)/bin")
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return candidates + path.split(separator: ":").map(String.init)
    }

    /// The file a path names after following symbolic links (/bin → /usr/bin),
    /// or the path itself when that fails.
    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func version(of program: String) -> (Int, String)? {
        let out = "/tmp/pgvault-version-\(getpid())-\(UUID().uuidString)"
        defer { unlink(out) }
        guard let r = try? Subprocess.run([program, "--version"], stdoutPath: out), r.status == 0,
              let text = try? String(contentsOfFile: out, encoding: .utf8) else { return nil }
        // "pg_dump (PostgreSQL) 17.10" or "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        guard let word = text.split(separator: " ").dropFirst(2).first else { return nil }
        let version = String(word).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let major = Int(version.split(separator: ".").first ?? "") else { return nil }
        return (major, version)
    }

    /// Runs one of the programs against `conninfo`, or with no database when it
    /// is nil (pg_restore writing a script from an archive file). The password,
    /// if the conninfo holds one, travels in PGPASSWORD; the command line gets
    /// the conninfo without it.
    public func run(_ program: String, conninfo: String?, arguments: [String], stdinPath: String? = nil, stdoutPath: String? = nil) throws -> Subprocess.Result {
        let options = try conninfo.map { try ConnInfo.parseOrThrow($0) } ?? []
        var env: [String: String] = [:]
        var shown: [String] = []
        for (key, value) in options {
            if key == "password" { env["PGPASSWORD"] = value; continue }
            shown.append("\(key)=\(ConnInfo.quoteValue(value))")
        }
        let dbArg = shown.isEmpty ? [] : ["--dbname=" + shown.joined(separator: " ")]
        return try Subprocess.run(
            [binDir + "/" + program] + arguments + dbArg, stdinPath: stdinPath, stdoutPath: stdoutPath,
            extraEnvironment: env)
    }
}

