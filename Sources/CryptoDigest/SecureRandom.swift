import CCrypto

/// Bytes from libcrypto's CSPRNG (`RAND_bytes`), for keys and nonces.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws(DigestError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return out }
        let rc = RAND_bytes(&out, Int32(count))
        guard rc == 1 else {
            throw DigestError(.library, libraryMessage: drainErrorQueue(), context: "drawing \(count) random bytes (RAND_bytes)")
        }
        return out
    }
}
