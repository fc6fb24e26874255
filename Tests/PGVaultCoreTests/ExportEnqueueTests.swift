import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// export-user --enqueue's work, in PGVaultCore: find the user, queue a request.
@Suite("export: queueing a request for a user named on the command line")
struct ExportEnqueueTests {
    @Test("any form of --user queues a request for that user; an unknown user queues nothing")
    func enqueueByUser() throws {
        let db = try ExportFixture.make()
        let conn = try db.connect()
        for input in ["1003", "33333333-3333-4333-8333-333333333333", "carol.hidden@example.net", "carol#0003"] {
            let queued = try ExportQueue.enqueue(conn, user: input, maxAttempts: 2)
            #expect(queued.userID == 1003, "\(input)")
            let row = try conn.query("SELECT user_id::text, max_attempts::text, status FROM data_export_requests WHERE id = $1", [String(queued.requestID)])
            #expect(row.rows.first?.map { $0 ?? "" } == ["1003", "2", "pending"], "\(input)")
        }
        #expect(throws: (any Error).self) { try ExportQueue.enqueue(conn, user: "nobody#9999") }
        #expect(try conn.query("SELECT count(*)::text FROM data_export_requests").scalar == "4")
    }
}
