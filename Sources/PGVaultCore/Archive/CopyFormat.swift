import Foundation
import PGClient

/// How a unit's rows are encoded: COPY's text format, or its binary format.
///
/// Binary is the default for a table whose every column type has a binary form
/// that means the same thing in any database (``Catalog`` decides): the server
/// skips its text output and input functions (timestamps, numbers, arrays), so
/// both backup and restore cost it less CPU, and the rows compress better.
/// Text remains for everything else, and on request (`--copy-format text`), as
/// the most portable form. docs/archive-format.md describes both.
public enum CopyFormat: String, Codable, Sendable, CaseIterable {
    case text
    case binary

    /// The parenthesized option list for a COPY statement, with `extra`
    /// options (e.g. `FREEZE`), or "" when there are none.
    public func options(_ extra: [String] = []) -> String {
        let all = (self == .binary ? ["FORMAT binary"] : []) + extra
        return all.isEmpty ? "" : " (\(all.joined(separator: ", ")))"
    }
}

/// The framing of COPY's binary format: an 11-byte signature, a 32-bit flags
/// field, a 32-bit header-extension length and the extension; then tuples,
/// each a 16-bit field count and per field a 32-bit length (-1 for NULL) and
/// the bytes; then a 16-bit -1. All integers are big-endian.
enum BinaryCopy {
    static let signature: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00]
    static let trailer: [UInt8] = [0xFF, 0xFF]
    /// A header extension longer than this is taken for damage.
    static let maxExtension = 1 << 20

    @inline(__always)
    static func int16(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int16 {
        Int16(bitPattern: UInt16(b[at]) << 8 | UInt16(b[at + 1]))
    }

    @inline(__always)
    static func int32(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int32 {
        Int32(bitPattern: UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]))
    }

    /// Length of the header at the start of `b`, or nil if `b` holds only part of it.
    static func headerLength(_ b: UnsafeRawBufferPointer) throws -> Int? {
        for i in 0..<min(b.count, signature.count) where b[i] != signature[i] {
            throw PGVaultError.archive("the data does not start with the binary COPY signature")
        }
        guard b.count >= 19 else { return nil }
        let ext = Int(int32(b, 15))
        guard ext >= 0, ext <= maxExtension else {
            throw PGVaultError.archive("the binary COPY header has an invalid extension length \(ext)")
        }
        return b.count >= 19 + ext ? 19 + ext : nil
    }

    /// Length of the tuple (or of the 2-byte end marker) at `from`, or nil if
    /// `b` holds only part of it.
    static func tupleLength(_ b: UnsafeRawBufferPointer, from: Int) throws -> Int? {
        guard b.count - from >= 2 else { return nil }
        let fields = int16(b, from)
        if fields == -1 { return 2 }
        guard fields >= 0 else { throw PGVaultError.archive("a binary COPY tuple has an invalid field count \(fields)") }
        var at = from + 2
        for _ in 0..<Int(fields) {
            guard b.count - at >= 4 else { return nil }
            let length = Int(int32(b, at))
            at += 4
            if length == -1 { continue }
            guard length >= 0 else { throw PGVaultError.archive("a binary COPY field has an invalid length \(length)") }
            guard b.count - at >= length else { return nil }
            at += length
        }
        return at - from
    }

    static func isTrailer(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count == 2 && b[0] == 0xFF && b[1] == 0xFF
    }

    /// The fields of one whole tuple (nil for NULL).
    static func fields(_ tuple: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer?] {
        guard tuple.count >= 2 else { return [] }
        var out: [UnsafeRawBufferPointer?] = []
        var at = 2
        for _ in 0..<max(0, Int(int16(tuple, 0))) {
            guard tuple.count - at >= 4 else { break }
            let length = Int(int32(tuple, at))
            at += 4
            if length < 0 { out.append(nil); continue }
            guard tuple.count - at >= length else { break }
            out.append(UnsafeRawBufferPointer(rebasing: tuple[at..<(at + length)]))
            at += length
        }
        return out
    }

    /// A binary value shown as text for messages: integers, UUIDs, timestamps
    /// and text by their type (`format_type` names), anything else in hex.
    static func display(_ value: UnsafeRawBufferPointer?, type: String) -> String? {
        guard let value else { return nil }
        func integer() -> Int64 {
            let shift = Int64(64 - 8 * value.count)
            let raw = value.reduce(Int64(0)) { $0 << 8 | Int64($1) }
            return (raw << shift) >> shift
        }
        let integerTypes = ["bigint": 8, "integer": 4, "smallint": 2]
        if let width = integerTypes[type], value.count == width { return String(integer()) }
        if type == "uuid", value.count == 16 {
            let hex = Array(value.map { String(format: "%02x", $0) }.joined())
            return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(hex[$0]) }.joined(separator: "-")
        }
        if type.hasPrefix("timestamp"), value.count == 8 {
            return timestampText(integer(), withZone: type.hasSuffix("with time zone"))
        }
        if type == "text" || type.hasPrefix("character") { return String(decoding: value, as: UTF8.self) }
        return "\\x" + value.prefix(32).map { String(format: "%02x", $0) }.joined() + (value.count > 32 ? "…" : "")
    }
}

extension BinaryCopy {
    /// Microseconds since 2000-01-01 as COPY text prints them under
    /// ``CopySession`` (ISO, UTC): `2024-01-01 06:28:00.5+00`.
    static func timestampText(_ micros: Int64, withZone: Bool) -> String {
        if micros == Int64.max { return "infinity" }
        if micros == Int64.min { return "-infinity" }
        let (seconds, fraction) = micros.quotientAndRemainder(dividingBy: 1_000_000)
        var t = time_t(seconds + 946_684_800 - (fraction < 0 ? 1 : 0))
        var parts = tm()
        gmtime_r(&t, &parts)
        var text = String(format: "%04d-%02d-%02d %02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                          Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        let micro = fraction < 0 ? fraction + 1_000_000 : fraction
        if micro != 0 {
            var digits = String(format: "%06d", Int(micro))
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return withZone ? text + "+00" : text
    }
}

/// The rows of a `COPY ... TO STDOUT` as the server sends them, one CopyData
/// message per row. A text row loses its newline. In binary, the stream's
/// header rides on the first message and the end marker is a message of its
/// own; neither is a row. This is the backup's per-row path, so a binary
/// message is only checked to start with the table's field count (the
/// fields' framing is walked by ``RowSplitter`` when an archive is verified).
public struct CopyRowReader {
    public let format: CopyFormat
    private var started = false
    private var fields: Int16?

    public init(_ format: CopyFormat) { self.format = format }

    /// The row in `message`, or nil if the message holds none.
    public mutating func row(in message: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer? {
        switch format {
        case .text:
            let n = message.last == 0x0A ? message.count - 1 : message.count
            return UnsafeRawBufferPointer(rebasing: message[0..<n])
        case .binary:
            var rest = message
            if !started {
                guard let header = try BinaryCopy.headerLength(message) else {
                    throw PGVaultError.archive("the server's first binary COPY message holds no whole header")
                }
                started = true
                rest = UnsafeRawBufferPointer(rebasing: message[header...])
            }
            if rest.isEmpty || BinaryCopy.isTrailer(rest) { return nil }
            let count = rest.count >= 2 ? BinaryCopy.int16(rest, 0) : -1
            if fields == nil, count >= 0 { fields = count }
            guard count >= 0, count == fields else {
                throw PGVaultError.archive("a binary COPY message from the server does not start a tuple of \(fields.map(String.init) ?? "its") fields")
            }
            return rest
        }
    }
}

/// Splits a stored COPY stream into rows, whatever the chunking: lines for
/// text, tuples for binary (whose header and end marker are checked, not
/// returned). A partial row is carried between chunks in a buffer that grows
/// only to the longest row.
public struct RowSplitter {
    public let format: CopyFormat
    private var lines = LineSplitter()
    private var carry: [UInt8] = []
    private var headerDone = false
    private var ended = false

    public init(_ format: CopyFormat) { self.format = format }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer, row: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard format == .binary else {
            try lines.feed(chunk, line: row)
            return
        }
        var i = 0
        let n = chunk.count
        // First complete the item the carry holds (the carry never holds a
        // whole one): add bytes until it does, then hand back any excess.
        while !carry.isEmpty {
            if let length = try carry.withUnsafeBytes({ try nextItem($0) }) {
                try carry.withUnsafeBytes { try consume(UnsafeRawBufferPointer(rebasing: $0[0..<length]), row) }
                i -= carry.count - length
                carry.removeAll(keepingCapacity: true)
            } else {
                guard i < n else { return }
                let take = min(n - i, max(64, carry.count))
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<(i + take)]))
                i += take
            }
        }
        while i < n {
            let rest = UnsafeRawBufferPointer(rebasing: chunk[i..<n])
            guard let length = try nextItem(rest) else {
                carry.append(contentsOf: rest)
                return
            }
            try consume(UnsafeRawBufferPointer(rebasing: rest[0..<length]), row)
            i += length
        }
    }

    /// Why the stream is incomplete, or nil if it ended where a whole stream ends.
    public var incomplete: String? {
        switch format {
        case .text:
            return lines.remainder > 0 ? "it ends in the middle of a row (\(lines.remainder) bytes after the last newline)" : nil
        case .binary:
            if !carry.isEmpty { return "it ends in the middle of a row (\(carry.count) bytes of a partial tuple)" }
            return ended ? nil : "it ends without binary COPY's end marker (truncated)"
        }
    }

    private func nextItem(_ b: UnsafeRawBufferPointer) throws -> Int? {
        guard !ended else { throw PGVaultError.archive("bytes follow the binary COPY end marker") }
        return headerDone ? try BinaryCopy.tupleLength(b, from: 0) : try BinaryCopy.headerLength(b)
    }

    private mutating func consume(_ item: UnsafeRawBufferPointer, _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !headerDone {
            headerDone = true
        } else if BinaryCopy.isTrailer(item) {
            ended = true
        } else {
            try row(item)
        }
    }
}

extension RowDigest {
    /// The digest of what `sql` (a `COPY ... TO STDOUT` in `format`) returns.
    public static func of(_ conn: PGConnection, _ sql: String, format: CopyFormat) throws -> RowDigest {
        var digest = RowDigest()
        var reader = CopyRowReader(format)
        try conn.copyOut(sql) { message in
            if let row = try reader.row(in: message) { digest.add(row: row) }
        }
        return digest
    }
}
