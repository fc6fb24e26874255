#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libarchive converts entry names between UTF-8 (pax and zip headers) and
/// "the current locale's character set". Swift programs run in the "C"
/// locale, where that conversion fails for any non-ASCII name; libarchive
/// 3.6.2 then writes pax headers with a NULL name and crashes. So every
/// libarchive call of this module runs with the calling thread switched to a
/// UTF-8 `LC_CTYPE` (`uselocale`, per thread: the process locale is left alone).
struct UTF8Locale: @unchecked Sendable {
    // @unchecked: the handle is created once, never mutated or freed, and
    // locale objects may be used from any thread.
    private let handle: locale_t?

    static let shared = UTF8Locale()

    private init() {
        var found: locale_t?
        for name in ["C.UTF-8", "C.utf8", "en_US.UTF-8", "UTF-8"] where found == nil {
            found = newlocale(LC_CTYPE_MASK, name, nil)
        }
        handle = found
    }

    /// False when no UTF-8 locale is installed: non-ASCII names are then refused.
    var isAvailable: Bool { handle != nil }

    /// Runs `body` with this thread's locale set to UTF-8, restoring it after.
    @discardableResult
    func run<T>(_ body: () throws -> T) rethrows -> T {
        guard let handle else { return try body() }
        let previous = uselocale(handle)
        defer { uselocale(previous) }
        return try body()
    }
}
