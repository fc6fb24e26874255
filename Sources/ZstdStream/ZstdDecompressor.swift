import CZstd

/// Streaming zstd decompressor.
///
/// Feed compressed bytes with `decompress(_:sink:)` in chunks of any size,
/// then call `finish()`, which throws if the input stopped in the middle of
/// a frame. Concatenated frames decode as one continuous stream.
///
/// Defences against hostile input:
/// - `maxOutputBytes` caps the total decompressed size (decompression bombs);
/// - `windowLogMax` caps the window a frame may request (memory exhaustion);
/// - frames carrying a content checksum are verified by libzstd.
///
/// Memory is bounded: output goes through one fixed buffer of
/// `ZSTD_DStreamOutSize()` bytes handed to the sink chunk by chunk.
///
/// Thread ownership: not `Sendable`. One thread (typically a dedicated
/// worker) creates, uses and drops an instance; it is never shared.
/// Sinks run synchronously on that thread.
public final class ZstdDecompressor {
    /// 2^27 bytes (128 MiB) — libzstd's own default limit for streaming
    /// decoders, and enough for any frame our compressor writes.
    public static let defaultWindowLogMax: Int32 = 27

    /// Owned `ZSTD_DCtx*`; freed exactly once in `deinit`.
    private let dctx: OpaquePointer
    private let buffer: StreamBuffer
    private var latch = FailureLatch()
    /// Last hint from `ZSTD_decompressStream`: 0 means "at a frame boundary".
    private var frameHint = 0

    public let maxOutputBytes: UInt64?
    public let windowLogMax: Int32
    /// Compressed bytes consumed so far.
    public private(set) var bytesIn: UInt64 = 0
    /// Decompressed bytes handed to sinks so far.
    public private(set) var bytesOut: UInt64 = 0

    public init(maxOutputBytes: UInt64? = nil, windowLogMax: Int32 = ZstdDecompressor.defaultWindowLogMax) throws {
        guard let dctx = ZSTD_createDCtx() else {
            throw ZstdError(.allocationFailed, context: "creating a decompression context")
        }
        self.dctx = dctx
        self.buffer = StreamBuffer(capacity: ZSTD_DStreamOutSize())
        self.maxOutputBytes = maxOutputBytes
        self.windowLogMax = windowLogMax
        // Fully initialized: from here on a throw still runs deinit, which frees the context.
        try zstdCheck(
            ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, windowLogMax),
            while: "setting ZSTD_d_windowLogMax=\(windowLogMax)"
        )
    }

    deinit {
        ZSTD_freeDCtx(dctx)
    }

    /// Decompresses `input`, calling `sink` with each decompressed chunk.
    public func decompress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try latch.ensureUsable("decompressing")
        // An empty call can make no progress; skipping it also keeps zstd's
        // "no forward progress" counter from tripping on repeated empty calls.
        guard !input.isEmpty else { return }
        try latch.guarding {
            try buffer.pump(
                input: input,
                step: { out, source throws(ZstdError) in
                    let start = source.pos
                    defer { bytesIn += UInt64(source.pos - start) }
                    return try zstdCheck(
                        ZSTD_decompressStream(dctx, &out, &source),
                        while: "decompressing (compressed input offset \(bytesIn)\(windowNote))"
                    )
                },
                emit: { chunk in
                    let total = bytesOut + UInt64(chunk.count)
                    if let limit = maxOutputBytes, total > limit {
                        throw ZstdError(.outputLimitExceeded(limit: limit), context: "decompressing")
                    }
                    try sink(chunk)
                    bytesOut = total
                },
                again: { step in
                    if step.madeProgress { frameHint = step.rc }
                    // A full output buffer means zstd may still hold decoded bytes.
                    return step.inputLeft || step.outputWasFull
                }
            )
        }
    }

    public func decompress(_ input: [UInt8], sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try input.withUnsafeBytes { try decompress($0, sink: sink) }
    }

    /// Declares the end of the input. Throws `.truncated` if the input ended
    /// in the middle of a frame and `.emptyInput` if there was no input at all.
    public func finish() throws {
        try latch.ensureUsable("finishing decompression")
        if bytesIn == 0 {
            throw ZstdError(.emptyInput, context: "finishing decompression")
        }
        if frameHint != 0 {
            throw ZstdError(
                .truncated,
                context: "finishing decompression after \(bytesIn) compressed bytes (zstd expects at least \(frameHint) more)"
            )
        }
    }

    /// Starts over with a new stream (and clears an earlier failure).
    /// Limits are kept; the byte totals restart at zero, as `maxOutputBytes`
    /// applies per stream.
    public func reset() throws {
        try zstdCheck(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only), while: "resetting the decompression session")
        latch.clear()
        frameHint = 0
        bytesIn = 0
        bytesOut = 0
    }

    private var windowNote: String {
        ", window limit 2^\(windowLogMax) bytes"
    }

    /// One-shot decompression of a small buffer (one or more frames).
    public static func decompress(bytes: [UInt8], maxOutputBytes: UInt64? = nil) throws -> [UInt8] {
        let decompressor = try ZstdDecompressor(maxOutputBytes: maxOutputBytes)
        var output: [UInt8] = []
        try decompressor.decompress(bytes) { output.append(contentsOf: $0) }
        try decompressor.finish()
        return output
    }
}
