import CZstd

/// The fixed-size output buffer a (de)compressor owns for its whole life.
/// Memory stays bounded: every step writes at most `storage.count` bytes,
/// which are handed to the caller's sink before the next step reuses them.
struct StreamBuffer: ~Copyable {
    let storage: UnsafeMutableRawBufferPointer

    init(capacity: Int) {
        storage = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    /// Runs `step` (one `ZSTD_compressStream2` / `ZSTD_decompressStream` call
    /// reading from `input` into a fresh, empty `ZSTD_outBuffer`), passes what
    /// it produced to `emit`, and repeats while `again` says so.
    func pump(
        input: UnsafeRawBufferPointer,
        step: (inout ZSTD_outBuffer, inout ZSTD_inBuffer) throws -> Int,
        emit: (UnsafeRawBufferPointer) throws -> Void,
        again: (_ step: PumpStep) -> Bool
    ) throws {
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var result: PumpStep
        repeat {
            var out = ZSTD_outBuffer(dst: storage.baseAddress, size: storage.count, pos: 0)
            let consumedBefore = source.pos
            let rc = try step(&out, &source)
            if out.pos > 0 {
                try emit(UnsafeRawBufferPointer(start: storage.baseAddress, count: out.pos))
            }
            result = PumpStep(
                rc: rc,
                outputWasFull: out.pos == out.size,
                inputLeft: source.pos < source.size,
                madeProgress: out.pos > 0 || source.pos > consumedBefore
            )
        } while again(result)
    }
}

/// What one step of `StreamBuffer.pump` left behind.
struct PumpStep {
    /// The (non-error) return value of the zstd call: remaining bytes to flush
    /// when compressing, a next-input-size hint (0 = frame done) when decompressing.
    let rc: Int
    /// The output buffer was filled completely, so zstd may hold more output.
    let outputWasFull: Bool
    /// Part of the input has not been consumed yet.
    let inputLeft: Bool
    /// The call consumed input or produced output. A call that did neither
    /// (e.g. a flush attempt exactly at a frame boundary) changes no state, but
    /// its `rc` then describes the *next* frame rather than the current one.
    let madeProgress: Bool
}

/// Remembers that an earlier call failed, so that a stream in an unknown
/// state is never silently continued.
struct FailureLatch {
    private(set) var tripped = false

    func ensureUsable(_ context: String) throws(ZstdError) {
        if tripped { throw ZstdError(.unusable, context: context) }
    }

    /// Runs `body`; any error it throws trips the latch and is rethrown.
    mutating func guarding<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            tripped = true
            throw error
        }
    }

    mutating func clear() { tripped = false }
}
