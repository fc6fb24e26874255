import Foundation
import PGClient
import Support

#if canImport(Glibc)
import Glibc
#endif

/// Runs an external program (pg_dump, psql) with posix_spawn and waitpid.
/// Standard output and error go to files, never pipes, so a program that leaves
/// a child behind cannot keep us waiting. Arguments never hold secrets: a
/// password goes to the child through its environment (PGPASSWORD), which other
/// users cannot read, not through its command line, which `ps` shows.
public enum Subprocess {
    public struct Result: Sendable {
        public let status: Int32
        public let stderr: String
    }

    /// Runs `argv`, with stdin from `stdinPath` (or /dev/null) and stdout into
    /// `stdoutPath` (or /dev/null). `extraEnvironment` is added to ours.
    ///
    /// If the work is cancelled (`Cancellation`, e.g. SIGINT) while the program
    /// runs, the program is sent SIGTERM, waited for, and `CancellationError`
    /// is thrown: a pg_dump does not run on after pgvault gave up.
    public static func run(
        _ argv: [String], stdinPath: String? = nil, stdoutPath: String? = nil,
        extraEnvironment: [String: String] = [:]
    ) throws -> Result {
        let errPath = "/tmp/pgvault-stderr-\(getpid())-\(UUID().uuidString)"
        defer { unlink(errPath) }
        let pid = try spawn(argv, stdinPath: stdinPath, stdoutPath: stdoutPath, stderrPath: errPath, extraEnvironment: extraEnvironment)
        _ = children.withLock { $0.insert(pid) }
        defer { _ = children.withLock { $0.remove(pid) } }
        let code = waitOrStop(pid)
        try Cancellation.check()
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Result(status: code, stderr: stderr)
    }

    /// Starts `argv` without waiting for it; standard streams go to the given
    /// files (or /dev/null). Its environment is `environment` (default: ours)
    /// plus `extraEnvironment`. Returns its pid, for ``wait(_:)`` or a signal.
    public static func spawn(
        _ argv: [String], stdinPath: String? = nil, stdoutPath: String? = nil, stderrPath: String? = nil,
        environment: [String: String]? = nil, extraEnvironment: [String: String] = [:]
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        var env = environment ?? ProcessInfo.processInfo.environment
        for (k, v) in extraEnvironment { env[k] = v }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard rc == 0 else {
            // FileError's text: "cannot run <program>: <reason>".
            throw PGVaultError.io("", underlying: FileError(operation: "run", path: argv[0], code: rc))
        }
        return pid
    }

    /// Waits for a spawned process; its exit status, or 128 + signal.
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return exitCode(status)
    }

    /// Sends SIGTERM to every program `run` is waiting for (a second SIGINT
    /// quits at once and must not leave a pg_dump behind). Async-signal-safe
    /// enough for a dispatch signal handler: a lock and kill(2).
    public static func terminateRunning() {
        children.value.forEach { kill($0, SIGTERM) }
    }

    /// Like `wait`, but polls so that a cancellation of the work sends the
    /// program SIGTERM (then waits for it to go).
    static func waitOrStop(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        var stopped = false
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return exitCode(status) }
            if r == -1 && errno != EINTR { return 128 + SIGKILL }
            if !stopped, Cancellation.isCancelled {
                kill(pid, SIGTERM)
                stopped = true
            }
            usleep(20_000)
        }
    }

    /// The programs `run` is waiting for.
    private static let children = Locked<Set<pid_t>>([])

    private static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}


