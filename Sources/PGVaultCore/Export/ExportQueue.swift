import Foundation
import PGClient

/// A request a worker has claimed. `attempt` (the request's `attempts` after
/// the claim) together with `workerID` fences every later update: a worker
/// whose lease was taken back can no longer change the request.
public struct ExportRequest: Sendable, Equatable {
    public let id: Int64
    public let userID: Int64
    public let attempt: Int
    public let maxAttempts: Int
    public let workerID: String
}

/// Where a finished package went, as the request row records it.
public struct ExportDelivery: Sendable, Equatable {
    /// The file's path, or `s3://BUCKET/KEY`.
    public var path: String
    /// The object's key in its bucket (nil for a folder).
    public var key: String?
    /// A pre-signed GET link and when it stops working (`--presign`).
    public var downloadURL: String?
    public var downloadExpiresAt: Date?

    public init(path: String, key: String? = nil, downloadURL: String? = nil, downloadExpiresAt: Date? = nil) {
        self.path = path
        self.key = key
        self.downloadURL = downloadURL
        self.downloadExpiresAt = downloadExpiresAt
    }
}

/// The statements of the `data_export_requests` queue (migrations
/// 20250101000011 and 20250101000012). Each runs in autocommit on a connection of its own, never
/// on the connection that holds an export's snapshot. All times are the
/// database's clock, so workers on machines with different clocks agree.
public enum ExportQueue {
    /// Adds a request for the user `input` names (an id, a public_id, an email
    /// or username#discriminator, as ``UserSelector`` reads it); returns the
    /// user's id and the request's. A user who does not exist is an error.
    public static func enqueue(_ conn: PGConnection, user input: String, maxAttempts: Int = 3) throws -> (userID: Int64, requestID: Int64) {
        let userID = try conn.transaction { try UserSelector(parsing: input).resolveID($0, input: input) }
        return (userID, try enqueue(conn, userID: userID, maxAttempts: maxAttempts))
    }

    /// Adds a request; returns its id.
    @discardableResult
    public static func enqueue(_ conn: PGConnection, userID: Int64, maxAttempts: Int = 3) throws -> Int64 {
        try conn.query(
            "INSERT INTO data_export_requests (user_id, max_attempts) VALUES ($1, $2) RETURNING id",
            [String(userID), String(maxAttempts)]
        ).firstRow().int64(0)
    }

    /// Takes back requests whose lease ran out (their worker stopped or
    /// died): pending again, or failed when no attempt is left, with the
    /// reason in last_error. Rows another worker has locked are skipped.
    /// Returns (id, new status) of each.
    @discardableResult
    public static func reclaimExpired(_ conn: PGConnection) throws -> [(id: Int64, status: String)] {
        try conn.query("""
            UPDATE data_export_requests d
               SET status = CASE WHEN d.attempts >= d.max_attempts THEN 'failed' ELSE 'pending' END,
                   last_error = format('attempt %s of %s by %s: lease expired at %s before the export completed (the worker stopped or died)',
                                       d.attempts, d.max_attempts, d.claimed_by,
                                       to_char(d.lease_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                   lease_expires_at = NULL
             WHERE d.id IN (SELECT id FROM data_export_requests
                             WHERE status = 'running' AND lease_expires_at < now()
                             FOR UPDATE SKIP LOCKED)
            RETURNING d.id, d.status
            """).rows.map { (try $0.int64(0), try $0.string(1)) }
    }

    /// Claims the oldest pending request: FOR UPDATE SKIP LOCKED, so any
    /// number of workers on any number of machines never take the same one.
    /// The claim counts one attempt and holds for `leaseSeconds` unless renewed.
    public static func claim(_ conn: PGConnection, workerID: String, leaseSeconds: Double) throws -> ExportRequest? {
        guard let row = try conn.query("""
            UPDATE data_export_requests
               SET status = 'running', attempts = attempts + 1, claimed_by = $1, claimed_at = now(),
                   lease_expires_at = now() + make_interval(secs => $2::double precision)
             WHERE id = (SELECT id FROM data_export_requests
                          WHERE status = 'pending'
                          ORDER BY requested_at, id
                          FOR UPDATE SKIP LOCKED
                          LIMIT 1)
            RETURNING id, user_id, attempts, max_attempts
            """, [workerID, String(leaseSeconds)]).rows.first else { return nil }
        return ExportRequest(
            id: try row.int64(0), userID: try row.int64(1),
            attempt: try row.int(2), maxAttempts: try row.int(3), workerID: workerID)
    }

    static let fence = "id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'running'"

    static func fenceParameters(_ r: ExportRequest) -> [String?] { [String(r.id), r.workerID, String(r.attempt)] }

    /// Extends the lease. False when the request is no longer this claim's
    /// (taken back after the lease ran out, or deleted with its user).
    public static func renewLease(_ conn: PGConnection, _ request: ExportRequest, leaseSeconds: Double) throws -> Bool {
        try conn.query("""
            UPDATE data_export_requests
               SET lease_expires_at = now() + make_interval(secs => $4::double precision)
             WHERE \(fence)
            RETURNING id
            """, fenceParameters(request) + [String(leaseSeconds)]).rows.count == 1
    }

    /// Records the package and, in the same transaction (holding the row
    /// lock), runs `publish` to move the file under its final name. Either
    /// both happen or neither. False (and `publish` not run) when the claim
    /// is no longer this worker's.
    public static func complete(
        _ conn: PGConnection, _ request: ExportRequest, path: String, bytes: Int64, sha256: String,
        publish: () throws -> Void
    ) throws -> Bool {
        try complete(conn, request, delivery: ExportDelivery(path: path), bytes: bytes, sha256: sha256, publish: publish)
    }

    /// ``complete(_:_:path:bytes:sha256:publish:)`` with the object's key and
    /// the pre-signed link of a package delivered to a bucket.
    public static func complete(
        _ conn: PGConnection, _ request: ExportRequest, delivery: ExportDelivery, bytes: Int64, sha256: String,
        publish: () throws -> Void
    ) throws -> Bool {
        let expires = delivery.downloadExpiresAt.map { String(format: "%.3f", $0.timeIntervalSince1970) }
        try conn.execute("BEGIN")
        do {
            let updated = try conn.query("""
                UPDATE data_export_requests
                   SET status = 'done', completed_at = now(), lease_expires_at = NULL,
                       output_path = $4, output_bytes = $5, output_sha256 = $6, output_key = $7,
                       download_url = $8, download_expires_at = to_timestamp($9::double precision)
                 WHERE \(fence)
                RETURNING id
                """, fenceParameters(request) + [delivery.path, String(bytes), sha256, delivery.key, delivery.downloadURL, expires]
            ).rows.count == 1
            guard updated else {
                try conn.execute("ROLLBACK")
                return false
            }
            try publish()
            // Should COMMIT fail now, the complete package stays under its
            // final name and the request is retried (and the file replaced).
            try conn.execute("COMMIT")
            return true
        } catch {
            if conn.isHealthy { try? conn.execute("ROLLBACK") }
            throw error
        }
    }

    /// Records a failed attempt: pending again while attempts remain, else
    /// failed. The error is kept in last_error. Returns the new status, or nil
    /// when the claim is no longer this worker's.
    @discardableResult
    public static func fail(_ conn: PGConnection, _ request: ExportRequest, error: String) throws -> String? {
        try conn.query("""
            UPDATE data_export_requests
               SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
                   last_error = $4, lease_expires_at = NULL
             WHERE \(fence)
            RETURNING status
            """, fenceParameters(request) + [String(error.prefix(4000))]).scalar
    }

    /// Gives a claim back without counting the attempt (the worker is
    /// stopping). False when the claim was no longer this worker's.
    @discardableResult
    public static func release(_ conn: PGConnection, _ request: ExportRequest) throws -> Bool {
        try conn.query("""
            UPDATE data_export_requests
               SET status = 'pending', attempts = attempts - 1, lease_expires_at = NULL
             WHERE \(fence)
            RETURNING id
            """, fenceParameters(request)).rows.count == 1
    }
}
