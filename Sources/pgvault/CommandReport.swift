import ArgumentParser
import Foundation
import PGVaultCore

#if canImport(Glibc)
import Glibc
#endif

/// The one way a command ends (docs/cli.md): its result as text or, with
/// `--json`, as one JSON object on one line; or its error as one line on
/// standard error (`pgvault <command>: error: ...`), the failure object with
/// `--json`, and exit status 2, or 128 + signal when it was interrupted.
struct CommandReport {
    let command: String
    let json: Bool
    /// The database the command works on, as named before any connection;
    /// the failure object carries it (monitoring filters on it).
    var database: String?
    /// Where the result goes: standard output, except for `backup --output -`,
    /// whose standard output is the archive.
    var resultOnStandardError = false
    /// Fields the failure object carries beside the common ones (restore's archive).
    var failureFields: [String: String] = [:]
    /// What an interrupted run leaves behind, for an interruption not already
    /// explained by ``cancellingOnSignals(leaving:_:)``.
    var interruptedLeaves = Interrupted.nothingPublished
    /// Runs when the command fails, before the failure is printed (a metrics file).
    var onFailure: (() -> Void)?
    let started = Date()

    init(_ command: String, json: Bool, database: String? = nil) {
        self.command = command
        self.json = json
        self.database = database
    }

    /// Runs `body`, reporting a failure the one way. Usage errors go on to
    /// the argument parser; an `ExitCode` means the body has reported itself.
    func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ValidationError {
            throw error
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail(error)
        }
    }

    /// Prints the result: `value` as JSON with `--json`, else `text`.
    func result<T: Encodable>(_ value: T, text: () -> String) {
        write(json ? Self.jsonLine(value) : text())
    }

    /// Reports `error`, and returns the exit status to throw.
    func fail(_ error: any Error) -> ExitCode {
        if isatty(2) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }  // a progress line
        onFailure?()
        let error = Interrupted.explaining(error, leaving: interruptedLeaves)
        let interrupted = error as? Interrupted
        // The kind decides the exit status and the JSON status (docs/cli.md).
        let failure = interrupted.map { PGVaultError(.interrupted, "\($0)") } ?? PGVaultError.classify(error)
        note(interrupted != nil ? "pgvault \(command): \(error)" : "pgvault \(command): error: \(failure)")
        if json {
            var object = Failure(
                status: failure.status, kind: failure.kind.rawValue, command: command, error: "\(failure)",
                database: database, seconds: Self.seconds(since: started))
            object.extra = failureFields
            write(Self.jsonLine(object))
        }
        return ExitCode(interrupted.map { 128 + $0.signal } ?? failure.exitCode)
    }

    private func write(_ line: String) {
        if resultOnStandardError { note(line) } else { print(line) }
    }

    /// Seconds with millisecond precision, as every JSON object carries them.
    static func seconds(since start: Date) -> Double {
        (Date().timeIntervalSince(start) * 1000).rounded() / 1000
    }

    /// One JSON object on one line: keys sorted, slashes not escaped.
    static func jsonLine<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return #"{"status":"failed","error":"the result could not be encoded as JSON"}"# }
        return String(decoding: data, as: UTF8.self)
    }

    /// The failure object of docs/cli.md.
    struct Failure: Encodable {
        var status: String
        /// The ``PGVaultError/Kind``: usage, connection, server, archive, io, interrupted or verification.
        var kind: String
        var command: String
        var error: String
        var database: String?
        var seconds: Double
        var extra: [String: String] = [:]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: JSONKey.self)
            try container.encode(status, forKey: JSONKey("status"))
            try container.encode(kind, forKey: JSONKey("kind"))
            try container.encode(command, forKey: JSONKey("command"))
            try container.encode(error, forKey: JSONKey("error"))
            try container.encodeIfPresent(database, forKey: JSONKey("database"))
            try container.encode(seconds, forKey: JSONKey("seconds"))
            for (key, value) in extra { try container.encode(value, forKey: JSONKey(key)) }
        }
    }
}

/// A JSON key chosen at run time (the failure object's extra fields, a list's name).
struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// The JSON of commands whose result is a list: an object like every other (docs/cli.md).
struct ListResult<Item: Encodable>: Encodable {
    var status = "ok"
    let repository: String
    let items: [Item]
    let key: String

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: JSONKey.self)
        try container.encode(status, forKey: .init("status"))
        try container.encode(repository, forKey: .init("repository"))
        try container.encode(items, forKey: .init(key))
    }
}

/// A result that has no `status` of its own, with `"status": "ok"` added.
struct WithStatus<Value: Encodable>: Encodable {
    let value: Value

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
        var container = encoder.container(keyedBy: JSONKey.self)
        try container.encode("ok", forKey: .init("status"))
    }
}
