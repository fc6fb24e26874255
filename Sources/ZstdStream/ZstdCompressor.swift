import CZstd

/// Streaming zstd compressor producing standard zstd frames.
///
/// Feed data with `compress(_:sink:)` as often as needed, then call
/// `finish(sink:)` to close the frame. After `finish` the next `compress`
/// starts a new frame, so one compressor can write a multi-frame stream
/// (concatenated frames decode as one stream).
///
/// Memory is bounded: output goes through one fixed buffer of
/// `ZSTD_CStreamOutSize()` bytes that is handed to the sink chunk by chunk.
///
/// Thread ownership: not `Sendable`. One thread (typically a dedicated
/// worker) creates, uses and drops an instance; it is never shared.
/// Sinks run synchronously on that thread.
public final class ZstdCompressor {
    public static let defaultLevel: Int32 = 3

    /// Owned `ZSTD_CCtx*`; freed exactly once in `deinit`.
    private let cctx: OpaquePointer
    private let buffer: StreamBuffer
    private var latch = FailureLatch()

    public let level: Int32
    /// Uncompressed bytes accepted so far (all frames).
    public private(set) var bytesIn: UInt64 = 0
    /// Compressed bytes handed to sinks so far (all frames).
    public private(set) var bytesOut: UInt64 = 0

    /// - Parameters:
    ///   - level: zstd compression level, `ZSTD_minCLevel()...ZSTD_maxCLevel()`.
    ///   - checksum: write a content checksum into each frame (checked on decompression).
    ///   - workers: when > 0, compress with that many libzstd worker threads.
    public init(level: Int32 = ZstdCompressor.defaultLevel, checksum: Bool = true, workers: Int32 = 0) throws {
        guard let cctx = ZSTD_createCCtx() else {
            throw ZstdError(.allocationFailed, context: "creating a compression context")
        }
        self.cctx = cctx
        self.buffer = StreamBuffer(capacity: ZSTD_CStreamOutSize())
        self.level = level
        // Fully initialized: from here on a throw still runs deinit, which frees the context.
        let (minLevel, maxLevel) = (ZSTD_minCLevel(), ZSTD_maxCLevel())
        guard (minLevel...maxLevel).contains(level) else {
            throw ZstdError(.invalidArgument, context: "setting compression level \(level) (allowed \(minLevel)...\(maxLevel))")
        }
        try setParameter(ZSTD_c_compressionLevel, level, "setting compression level \(level)")
        try setParameter(ZSTD_c_checksumFlag, checksum ? 1 : 0, "enabling the content checksum")
        if workers > 0 {
            try setParameter(
                ZSTD_c_nbWorkers, workers,
                "setting ZSTD_c_nbWorkers=\(workers) (this libzstd may be built without multithreading)"
            )
        }
    }

    deinit {
        ZSTD_freeCCtx(cctx)
    }

    private func setParameter(_ parameter: ZSTD_cParameter, _ value: Int32, _ context: String) throws(ZstdError) {
        try zstdCheck(ZSTD_CCtx_setParameter(cctx, parameter, value), while: context)
    }

    /// Compresses `input`, calling `sink` with each compressed chunk as the
    /// internal output buffer fills. Some input may stay buffered inside zstd
    /// until more input arrives or `finish(sink:)` is called.
    public func compress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try latch.ensureUsable("compressing")
        guard !input.isEmpty else { return }
        try latch.guarding {
            try run(ZSTD_e_continue, input, "compressing (input offset \(bytesIn))", sink: sink) { $0.inputLeft }
            bytesIn += UInt64(input.count)
        }
    }

    public func compress(_ input: [UInt8], sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try input.withUnsafeBytes { try compress($0, sink: sink) }
    }

    /// Ends the current frame, flushing everything still buffered to `sink`.
    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try latch.ensureUsable("finishing a frame")
        try latch.guarding {
            try run(ZSTD_e_end, UnsafeRawBufferPointer(start: nil, count: 0), "finishing a frame", sink: sink) {
                $0.rc != 0
            }
        }
    }

    /// Abandons any frame in progress (and clears an earlier failure), so the
    /// next `compress` starts a fresh frame. Parameters and totals are kept.
    public func reset() throws {
        try zstdCheck(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only), while: "resetting the compression session")
        latch.clear()
    }

    private func run(
        _ directive: ZSTD_EndDirective,
        _ input: UnsafeRawBufferPointer,
        _ context: @autoclosure () -> String,
        sink: (UnsafeRawBufferPointer) throws -> Void,
        again: (PumpStep) -> Bool
    ) throws {
        try buffer.pump(
            input: input,
            step: { out, source throws(ZstdError) in
                try zstdCheck(ZSTD_compressStream2(cctx, &out, &source, directive), while: context())
            },
            emit: { chunk in
                try sink(chunk)
                bytesOut += UInt64(chunk.count)
            },
            again: again
        )
    }

    /// One-shot compression of a small buffer into a single frame.
    public static func compress(bytes: [UInt8], level: Int32 = defaultLevel, checksum: Bool = true) throws -> [UInt8] {
        let compressor = try ZstdCompressor(level: level, checksum: checksum)
        var output: [UInt8] = []
        let append: (UnsafeRawBufferPointer) -> Void = { output.append(contentsOf: $0) }
        try compressor.compress(bytes, sink: append)
        try compressor.finish(sink: append)
        return output
    }
}
