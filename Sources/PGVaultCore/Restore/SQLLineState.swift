/// Where a line of a SQL script starts: at the top level, or inside a quoted
/// literal, a quoted identifier, a dollar-quoted body or a block comment
/// that an earlier line opened. A line-based reader of pg_dump's output (a
/// psql meta-command is a line starting with `\`, an object's header a
/// comment line) may only read a line as such at the top level: a string
/// literal can hold a newline followed by `\.` (a column's statistics, a
/// comment, a function body), and psql, which knows it is inside the
/// literal, runs it as text.
struct SQLLineState: Sendable, Equatable {
    private enum State: Sendable, Equatable {
        case top
        /// `'...'`; `escapes`: an `E'...'` string, where `\` escapes the next character.
        case literal(escapes: Bool)
        case identifier
        case dollar(tag: [UInt8])
        case comment(depth: Int)
    }

    private var state = State.top

    /// The line about to be read starts at the top level.
    var atTopLevel: Bool { state == .top }

    /// Reads one line (without its newline) and carries the state on.
    mutating func consume(_ line: Substring) {
        let bytes = Array(line.utf8)
        var i = 0
        func at(_ k: Int) -> UInt8? { k < bytes.count ? bytes[k] : nil }
        while i < bytes.count {
            let c = bytes[i]
            switch state {
            case .top:
                if c == UInt8(ascii: "-"), at(i + 1) == UInt8(ascii: "-") { return }  // a line comment: the rest of the line
                if c == UInt8(ascii: "/"), at(i + 1) == UInt8(ascii: "*") {
                    state = .comment(depth: 1)
                    i += 2
                    continue
                }
                if c == UInt8(ascii: "'") {
                    let prefix = i > 0 ? bytes[i - 1] : 0
                    let beforePrefix = i > 1 ? bytes[i - 2] : 0
                    state = .literal(escapes: (prefix == UInt8(ascii: "E") || prefix == UInt8(ascii: "e")) && !Self.isIdentifierByte(beforePrefix))
                } else if c == UInt8(ascii: "\"") {
                    state = .identifier
                } else if c == UInt8(ascii: "$"), i == 0 || !Self.isIdentifierByte(bytes[i - 1]), let end = dollarTagEnd(bytes, from: i) {
                    state = .dollar(tag: Array(bytes[i...end]))
                    i = end + 1
                    continue
                }
            case .literal(let escapes):
                if escapes && c == UInt8(ascii: "\\") {
                    i += 2
                    continue
                }
                if c == UInt8(ascii: "'") {
                    if at(i + 1) == UInt8(ascii: "'") {
                        i += 2
                        continue
                    }
                    state = .top
                }
            case .identifier:
                if c == UInt8(ascii: "\"") {
                    if at(i + 1) == UInt8(ascii: "\"") {
                        i += 2
                        continue
                    }
                    state = .top
                }
            case .dollar(let tag):
                if c == UInt8(ascii: "$"), i + tag.count <= bytes.count, Array(bytes[i..<(i + tag.count)]) == tag {
                    state = .top
                    i += tag.count
                    continue
                }
            case .comment(let depth):
                if c == UInt8(ascii: "/"), at(i + 1) == UInt8(ascii: "*") {
                    state = .comment(depth: depth + 1)
                    i += 2
                    continue
                }
                if c == UInt8(ascii: "*"), at(i + 1) == UInt8(ascii: "/") {
                    state = depth == 1 ? .top : .comment(depth: depth - 1)
                    i += 2
                    continue
                }
            }
            i += 1
        }
    }

    /// `$tag$` or `$$` starting at `start`: the index of its closing `$`.
    private func dollarTagEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var k = start + 1
        while k < bytes.count {
            let b = bytes[k]
            if b == UInt8(ascii: "$") { return k }
            let letter = (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || b == UInt8(ascii: "_") || b >= 0x80
            let digit = b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
            guard letter || (digit && k > start + 1) else { return nil }
            k += 1
        }
        return nil
    }

    private static func isIdentifierByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b == UInt8(ascii: "$") || b >= 0x80
    }
}
