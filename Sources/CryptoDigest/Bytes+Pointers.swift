/// The standard library's `withUnsafeBytes` rethrows untyped errors; these
/// carry a `DigestError` through it in a `Result`, so the EVP wrappers keep
/// their typed throws.
extension Array where Element == UInt8 {
    @inline(__always)
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(DigestError) -> R) throws(DigestError) -> R {
        try withUnsafeBytes { raw in Result { () throws(DigestError) in try body(raw) } }.get()
    }
}

/// Fails with `.invalidInput` unless `bytes` has exactly `count` bytes.
func requireLength(_ bytes: [UInt8], _ count: Int, _ what: @autoclosure () -> String) throws(DigestError) {
    guard bytes.count == count else {
        throw DigestError(.invalidInput, context: "\(what()) must be \(count) bytes, not \(bytes.count)")
    }
}
