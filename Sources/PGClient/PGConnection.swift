import CLibPQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection (`PGconn*`), owned by this object and freed exactly once in
/// `deinit`, also when connecting failed.
///
/// Thread ownership: libpq calls block, so a connection is used from one dedicated
/// thread at a time (see ``Blocking``), never from Swift's cooperative pool. It may
/// be handed from one thread to another between calls, which is why it is
/// `@unchecked Sendable`; it is never used by two threads at once. The only
/// operation that is safe from any thread is ``PGCanceller/cancel()``.
public final class PGConnection: @unchecked Sendable {
    private let conn: OpaquePointer
    private let noticeBox = NoticeBox()

    /// Connects with `conninfo` (a key=value string or a postgresql:// URI, as
    /// psql and pg_dump take it). libpq itself fills in anything not given from
    /// the PG* environment variables and `~/.pgpass`.
    public init(
        conninfo: String, applicationName: String = "pgvault",
        extra: [(String, String)] = []
    ) throws {
        var keys = ["dbname", "fallback_application_name"]
        var values = [conninfo, applicationName]
        for (k, v) in extra {
            keys.append(k)
            values.append(v)
        }
        let cKeys = keys.map { strdup($0) }
        let cValues = values.map { strdup($0) }
        defer {
            cKeys.forEach { free($0) }
            cValues.forEach { free($0) }
        }
        var keyPtrs: [UnsafePointer<CChar>?] = cKeys.map { UnsafePointer($0) } + [nil]
        var valuePtrs: [UnsafePointer<CChar>?] = cValues.map { UnsafePointer($0) } + [nil]
        let handle = keyPtrs.withUnsafeMutableBufferPointer { k in
            valuePtrs.withUnsafeMutableBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let handle else {
            throw PGError(kind: .connection, message: "out of memory while connecting")
        }
        conn = handle  // owned from here on: deinit runs PQfinish even if we throw below
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines()
            var hint: String?
            if message.contains("password authentication failed") {
                hint = "Check the password in the URI, PGPASSWORD or ~/.pgpass (pgvault never prints it)."
            } else if message.contains("no password supplied") {
                hint = "The server wants a password: set PGPASSWORD, add it to ~/.pgpass, or put it in the URI."
            } else if message.contains("No such file or directory") || message.contains("Connection refused") {
                hint = "Is the server running, and are host/port in --dbname (or PGHOST/PGPORT) right?"
            } else if message.contains("does not exist") {
                hint = "Create the database first, or name an existing one in --dbname."
            }
            throw PGError(kind: .connection, sqlState: nil, message: "could not connect: \(message)", hint: hint)
        }
        PQsetNoticeReceiver(conn, { arg, res in
            guard let arg, let res else { return }
            let box = Unmanaged<NoticeBox>.fromOpaque(arg).takeUnretainedValue()
            box.add(String(cString: PQresultErrorMessage(res)).trimmingTrailingNewlines())
        }, Unmanaged.passUnretained(noticeBox).toOpaque())
    }

    deinit {
        PQfinish(conn)
    }

    // MARK: - Facts about the session

    /// `PQserverVersion`, e.g. 170010 for 17.10 and 150018 for 15.18.
    public var serverVersionNumber: Int { Int(PQserverVersion(conn)) }
    public var serverMajorVersion: Int { serverVersionNumber / 10000 }
    public var backendPID: Int32 { PQbackendPID(conn) }
    public var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// A server parameter reported at connect time or on change (`server_version`,
    /// `server_encoding`, `client_encoding`, `TimeZone`, ...).
    public func parameterStatus(_ name: String) -> String? {
        PQparameterStatus(conn, name).map { String(cString: $0) }
    }

    /// NOTICE and WARNING messages the server sent (the most recent 100).
    public var notices: [String] { noticeBox.messages }

    // MARK: - Statements

    /// Runs one or more SQL statements given as plain text (no parameters).
    /// Use this for DDL and session settings; use ``query(_:_:)`` for values.
    public func execute(_ sql: String) throws {
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        try check(res, sql: sql, accepting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY])
    }

    /// Runs one statement with `$1, $2, ...` parameters sent separately from the SQL
    /// text (never spliced in), and returns its rows with every value as text.
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws -> QueryResult {
        let res = Self.withCStrings(params) { PQexecParams(conn, sql, Int32(params.count), nil, $0, nil, nil, 0) }
        defer { PQclear(res) }
        try check(res, sql: sql, accepting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
        return QueryResult(copying: res!, context: Self.summarize(sql))
    }

    /// Runs one statement like ``query(_:_:)``, but gives its rows to `body` one
    /// at a time as they arrive (libpq's single-row mode), so memory does not
    /// grow with the result. For results that grow with the database: the
    /// catalog's columns at 10,000 partitions are 160,000 rows, which held
    /// whole (libpq's result and its copy) took 60 MB.
    ///
    /// If `body` throws, the rest of the rows are read and dropped, so the
    /// connection is idle again, and the error is rethrown.
    /// - Returns: the number of rows.
    @discardableResult
    public func forEachRow(_ sql: String, _ params: [String?] = [], _ body: (QueryResult.Row) throws -> Void) throws -> Int {
        let sent = Self.withCStrings(params) { PQsendQueryParams(conn, sql, Int32(params.count), nil, $0, nil, nil, 0) }
        guard sent == 1 else { throw connectionError(context: sql, fallback: "could not send the query") }
        guard PQsetSingleRowMode(conn) == 1 else {
            let failure = drainResults(sql: sql)
            throw failure ?? connectionError(context: sql, fallback: "could not read the result row by row")
        }
        let context = Self.summarize(sql)
        var columns: [String]?
        var count = 0
        var consumerError: Error?
        var failure: PGError?
        while let res = PQgetResult(conn) {
            defer { PQclear(res) }
            let status = PQresultStatus(res)
            if status == PGRES_SINGLE_TUPLE {
                guard consumerError == nil else { continue }
                let n = PQnfields(res)
                let names = columns ?? (0..<n).map { String(cString: PQfname(res, $0)) }
                columns = names
                let values = (0..<n).map { c in PQgetisnull(res, 0, c) == 1 ? nil : String(cString: PQgetvalue(res, 0, c)) }
                do {
                    try body(QueryResult.Row(values: values, columns: names, context: context))
                    count += 1
                } catch {
                    consumerError = error
                }
            } else if status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && failure == nil {
                failure = makeError(res, sql: sql)
            }
        }
        if let consumerError { throw consumerError }
        if failure == nil && PQstatus(conn) != CONNECTION_OK {
            failure = connectionError(context: sql, fallback: "connection lost")
        }
        if let failure { throw failure }
        return count
    }

    /// Parameters as libpq takes them: C strings, NULL for SQL NULL, freed after `body`.
    private static func withCStrings<T>(_ params: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> T) -> T {
        let cParams = params.map { $0.map { strdup($0) } ?? nil }
        defer { cParams.forEach { free($0) } }
        return cParams.map { UnsafePointer($0) }.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// Runs `body` inside BEGIN ... COMMIT; rolls back if it throws.
    public func transaction<T>(
        _ begin: String = "BEGIN", _ body: (PGConnection) throws -> T
    ) throws -> T {
        try execute(begin)
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if isHealthy { try? execute("ROLLBACK") }
            throw error
        }
    }

    // MARK: - COPY

    /// Runs `COPY ... TO STDOUT` and hands each data message (one row in text and
    /// CSV formats) to `onData`. libpq allocates each message and pgvault frees it
    /// right after `onData` returns, so memory stays at one row plus libpq's buffer.
    ///
    /// If `onData` throws, the COPY is cancelled on the server, the connection is
    /// brought back to idle, and the error is rethrown.
    /// - Returns: the number of data messages (rows) received.
    @discardableResult
    public func copyOut(_ sql: String, onData: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        let start = PQexec(conn, sql)
        defer { PQclear(start) }
        try check(start, sql: sql, accepting: [PGRES_COPY_OUT])
        var rows: Int64 = 0
        var consumerError: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let n = PQgetCopyData(conn, &buffer, 0)
            if n > 0, let buffer {
                defer { PQfreemem(buffer) }
                if consumerError == nil {
                    do {
                        try onData(UnsafeRawBufferPointer(start: buffer, count: Int(n)))
                        rows += 1
                    } catch {
                        consumerError = error
                        _ = makeCanceller()?.cancel()
                    }
                }
            } else if n == -1 {
                break
            } else {
                throw connectionError(context: sql, fallback: "COPY data stream failed")
            }
        }
        let finalError = drainResults(sql: sql)
        if let consumerError { throw consumerError }
        if let finalError { throw finalError }
        return rows
    }

    /// Runs `COPY ... FROM STDIN`; `body` writes the data through the writer it is
    /// given. If `body` throws, the COPY is ended with an error so the server rolls
    /// the statement back, and the error is rethrown.
    /// - Returns: the number of rows the server loaded.
    @discardableResult
    public func copyIn(_ sql: String, body: (borrowing CopyInWriter) throws -> Void) throws -> Int64 {
        let start = PQexec(conn, sql)
        defer { PQclear(start) }
        try check(start, sql: sql, accepting: [PGRES_COPY_IN])
        let writer = CopyInWriter(conn: conn, sql: sql, owner: self)
        do {
            try body(writer)
        } catch {
            _ = PQputCopyEnd(conn, "aborted by pgvault")
            _ = drainResults(sql: sql)
            throw error
        }
        guard PQputCopyEnd(conn, nil) == 1 else {
            throw connectionError(context: sql, fallback: "could not end COPY")
        }
        var loaded: Int64 = 0
        var failure: PGError?
        while let res = PQgetResult(conn) {
            defer { PQclear(res) }
            if PQresultStatus(res) == PGRES_COMMAND_OK {
                loaded = Int64(String(cString: PQcmdTuples(res))) ?? 0
            } else if failure == nil {
                failure = makeError(res, sql: sql)
            }
        }
        if let failure { throw failure }
        return loaded
    }

    /// A handle that cancels this connection's running statement from any thread.
    public func makeCanceller() -> PGCanceller? {
        PQgetCancel(conn).map { PGCanceller(handle: $0) }
    }

    // MARK: - The one place libpq results are judged

    private func check(_ res: OpaquePointer?, sql: String, accepting: [ExecStatusType]) throws {
        guard let res else {
            throw connectionError(context: sql, fallback: "no result from server")
        }
        let status = PQresultStatus(res)
        if accepting.contains(status) { return }
        throw makeError(res, sql: sql)
    }

    fileprivate func makeError(_ res: OpaquePointer, sql: String) -> PGError {
        func field(_ code: Int32) -> String? {
            PQresultErrorField(res, code).map { String(cString: $0) }
        }
        let sqlState = field(PGV_DIAG_SQLSTATE)
        var message = field(PGV_DIAG_MESSAGE_PRIMARY)
            ?? String(cString: PQresultErrorMessage(res)).trimmingTrailingNewlines()
        if message.isEmpty {
            message = "unexpected result status \(String(cString: PQresStatus(PQresultStatus(res))))"
        }
        let kind: PGError.Kind
        if PQstatus(conn) != CONNECTION_OK {
            kind = .connectionLost
        } else if sqlState == PGError.queryCanceled {
            kind = .cancelled
        } else if sqlState == nil {
            kind = .protocolViolation
        } else {
            kind = .query
        }
        return PGError(
            kind: kind, sqlState: sqlState, message: message,
            detail: field(PGV_DIAG_MESSAGE_DETAIL), hint: field(PGV_DIAG_MESSAGE_HINT),
            context: Self.summarize(sql))
    }

    fileprivate func connectionError(context: String, fallback: String) -> PGError {
        var message = String(cString: PQerrorMessage(conn)).trimmingTrailingNewlines()
        if message.isEmpty { message = fallback }
        let lost = PQstatus(conn) != CONNECTION_OK
        return PGError(
            kind: lost ? .connectionLost : .protocolViolation, message: message,
            hint: lost ? "The server closed the connection: it may have restarted, or the backend was terminated." : nil,
            context: Self.summarize(context))
    }

    /// Reads every pending result so the connection is idle again; returns the
    /// first error among them.
    private func drainResults(sql: String) -> PGError? {
        var failure: PGError?
        while let res = PQgetResult(conn) {
            defer { PQclear(res) }
            let status = PQresultStatus(res)
            if status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_COPY_BOTH {
                // Still in COPY: should not happen after the end marker; stop here
                // rather than spin, the connection will be closed by the caller.
                return failure ?? PGError(kind: .protocolViolation, message: "COPY did not end", context: Self.summarize(sql))
            }
            if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && failure == nil {
                failure = makeError(res, sql: sql)
            }
        }
        if failure == nil && PQstatus(conn) != CONNECTION_OK {
            failure = connectionError(context: sql, fallback: "connection lost")
        }
        return failure
    }

    /// The statement, shortened for error messages (statements never hold secrets:
    /// values travel as parameters).
    static func summarize(_ sql: String) -> String {
        let oneLine = sql.split(whereSeparator: { $0 == "\n" || $0 == "\t" })
            .map { $0.trimmingCharacters(in: " ") }.joined(separator: " ")
        return oneLine.count > 200 ? String(oneLine.prefix(200)) + "..." : oneLine
    }

    fileprivate func fail(_ sql: String, _ fallback: String) -> PGError {
        connectionError(context: sql, fallback: fallback)
    }
}

/// Writes COPY data to the server. Only valid inside ``PGConnection/copyIn(_:body:)``.
public struct CopyInWriter: ~Copyable {
    fileprivate let conn: OpaquePointer
    fileprivate let sql: String
    fileprivate unowned let owner: PGConnection

    /// Sends bytes of COPY data; they need not align with rows.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)
            let ok = PQputCopyData(
                conn, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self), Int32(n))
            guard ok == 1 else { throw owner.fail(sql, "could not send COPY data") }
            offset += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }
}

/// Cancels the statement running on a connection (`PQcancel`), from any thread.
public final class PGCanceller: @unchecked Sendable {
    private let handle: OpaquePointer

    fileprivate init(handle: OpaquePointer) { self.handle = handle }

    deinit { PQfreeCancel(handle) }

    /// Asks the server to cancel; true if the request was sent. The statement then
    /// fails with SQLSTATE 57014 on its own connection.
    @discardableResult
    public func cancel() -> Bool {
        var errbuf = [CChar](repeating: 0, count: 256)
        return PQcancel(handle, &errbuf, Int32(errbuf.count)) == 1
    }
}

private final class NoticeBox: @unchecked Sendable {
    // Touched only by the thread that currently uses the connection.
    private(set) var messages: [String] = []
    func add(_ message: String) {
        if messages.count >= 100 { messages.removeFirst() }
        messages.append(message)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}
