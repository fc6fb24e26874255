/// Byte-level text helpers of the generator (COPY rows, JSON, names).
extension Array where Element == UInt8 {
    mutating func appendDecimalText(_ value: Int64) {
        var magnitude = value.magnitude
        if value < 0 { append(0x2D) }
        var digits = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        let start = count
        append(contentsOf: repeatElement(0x30, count: digits))
        var index = start + digits - 1
        repeat {
            self[index] = 0x30 + UInt8(magnitude % 10)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
    }

    mutating func appendZeroPadded(_ value: Int, width: Int) {
        let start = count
        append(contentsOf: repeatElement(0x30, count: width))
        var v = value
        var i = start + width - 1
        while i >= start {
            self[i] = 0x30 + UInt8(v % 10)
            v /= 10
            i -= 1
        }
    }

    mutating func appendStatic(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// COPY text escaping of backslash, LF, CR and tab.
    mutating func appendCopyTextEscaped(_ raw: [UInt8]) {
        for c in raw {
            switch c {
            case 0x5C: append(0x5C); append(0x5C)
            case 0x0A: append(0x5C); append(0x6E)
            case 0x0D: append(0x5C); append(0x72)
            case 0x09: append(0x5C); append(0x74)
            default: append(c)
            }
        }
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff+00`.
    mutating func appendTimestampText(_ micros: Int64) {
        let days = Synth.Timeline.floorDiv(micros, Synth.Timeline.day)
        let rest = micros - days * Synth.Timeline.day
        let date = Synth.Timeline.civilFromDays(Int(days))
        let seconds = Int(rest / Synth.Timeline.second)
        appendZeroPadded(date.year, width: 4)
        append(0x2D)
        appendZeroPadded(date.month, width: 2)
        append(0x2D)
        appendZeroPadded(date.day, width: 2)
        append(0x20)
        appendZeroPadded(seconds / 3600, width: 2)
        append(0x3A)
        appendZeroPadded(seconds / 60 % 60, width: 2)
        append(0x3A)
        appendZeroPadded(seconds % 60, width: 2)
        append(0x2E)
        appendZeroPadded(Int(rest % Synth.Timeline.second), width: 6)
        append(0x2B)
        append(0x30)
        append(0x30)
    }
}
