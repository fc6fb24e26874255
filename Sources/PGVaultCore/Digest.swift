import CCrypto

/// SHA-2 digests through OpenSSL's libcrypto (EVP), streaming: feed any number of
/// chunks, then take the digest. Owns its `EVP_MD_CTX`, freed once in deinit.
/// Not Sendable: one thread feeds one digest.
public final class SHA2 {
    public enum Algorithm: Sendable {
        case sha256, sha384
        fileprivate var md: OpaquePointer? { self == .sha256 ? EVP_sha256() : EVP_sha384() }
    }

    private let ctx: OpaquePointer
    public let algorithm: Algorithm

    public init(_ algorithm: Algorithm = .sha256) {
        self.algorithm = algorithm
        // EVP_MD_CTX_new fails only when memory is exhausted.
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        self.ctx = ctx
        guard EVP_DigestInit_ex(ctx, algorithm.md, nil) == 1 else { fatalError("EVP_DigestInit_ex failed") }
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public func update(_ text: String) {
        var text = text
        text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The digest of everything fed so far. The object cannot be fed afterwards.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    public func hexDigest() -> String { Hex.encode(finalize()) }

    public static func hex(_ algorithm: Algorithm = .sha256, of bytes: [UInt8]) -> String {
        let d = SHA2(algorithm)
        d.update(bytes)
        return d.hexDigest()
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var s = Substring(text)
        if s.hasPrefix("\\x") { s = s.dropFirst(2) }
        guard s.utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count / 2)
        var high: UInt8?
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}
