import CryptoDigest
import Foundation
@testable import PGVaultCore
import Testing
import TestSupport

/// pg_dump's `\restrict KEY` lines are replaced, in a repository, by an HMAC
/// of the script without them: the same schema gives the same chunks. The
/// script is read a line at a time (a PostgreSQL 18 statistics script is
/// tens of MiB), so every other byte must come out as it went in.
@Suite("repository: pg_dump's restrict key pinned, streaming")
struct RestrictKeyTests {
    @Test("lines across read blocks, a line over 1 MiB, bytes that are not UTF-8 and the final newline come out unchanged; the key is the MAC of the rest")
    func pinsWithoutHoldingTheScript() throws {
        let key = try RepositoryKey(repositoryID: "test", secret: [UInt8](repeating: 7, count: 32))
        let folder = try TestScratch.Folder("restrict")
        defer { folder.remove() }
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: (1 << 20) + 12345)
        var lines: [[UInt8]] = [
            Array("\\restrict AbC123xyz".utf8), Array("SET statement_timeout = 0;".utf8), long,
            [0xff, 0xfe, UInt8(ascii: ";")], Array("\\restrictnot a key line".utf8), [],
            Array("\\unrestrict AbC123xyz".utf8), [],
        ]
        let path = folder["script.sql"]
        try Data(lines.joined(separator: [UInt8(ascii: "\n")])).write(to: URL(fileURLWithPath: path))

        try key.pinRestrictKey(inFile: path)

        let rest = lines.enumerated().filter { ![0, 6].contains($0.offset) }.map(\.element)
        let pinned = Hex.encode(try HMACSHA256.authenticationCode(
            key: key.macKey, message: Array("pg_dump restrict key\0".utf8) + Array(rest.joined(separator: [UInt8(ascii: "\n")]))))
        lines[0] = Array("\\restrict \(pinned)".utf8)
        lines[6] = Array("\\unrestrict \(pinned)".utf8)
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written == Array(lines.joined(separator: [UInt8(ascii: "\n")])))
        #expect(folder.names == ["script.sql"], "no temporary file is left")

        // Pinned twice, the same script: the same bytes (what deduplicates the schema).
        try key.pinRestrictKey(inFile: path)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == written)
    }

    @Test("a script without restrict lines is left as it is")
    func leavesOtherScripts() throws {
        let key = try RepositoryKey(repositoryID: "test", secret: [UInt8](repeating: 1, count: 32))
        let folder = try TestScratch.Folder("restrict-none")
        defer { folder.remove() }
        let text = Array("CREATE TABLE t (id int);\n".utf8)
        try Data(text).write(to: URL(fileURLWithPath: folder["s.sql"]))
        try key.pinRestrictKey(inFile: folder["s.sql"])
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder["s.sql"]))) == text)
    }
}
