/// A streaming content-defined chunker (FastCDC with normalized chunking).
///
/// A backup feeds it each unit's COPY stream as the bytes arrive; it hands
/// back every completed chunk, and ``finish(_:)`` the last one. Boundaries
/// depend only on the content (and the parameters), never on how the stream
/// was split into `feed` calls, so a row inserted or updated in a partition
/// changes the chunks around it and none after: the stream re-synchronises at
/// the next boundary. Memory is one buffer of `maximumSize`, allocated once
/// the first chunk spans two `feed` calls (with COPY's pieces, nearly every
/// chunk does) and reused; a chunk that lies within one input is handed out
/// in place, without a copy.
public struct Chunker: Sendable {
    /// One chunk: its place in the stream and its bytes, which are valid only
    /// during the call that receives them.
    public struct Chunk {
        public let offset: Int
        public let bytes: UnsafeRawBufferPointer
    }

    public let parameters: ChunkerParameters
    /// The part of the current chunk seen in earlier `feed` calls.
    private var pending: [UInt8] = []
    /// The rolling fingerprint of the current chunk from `minimumSize` on.
    private var fingerprint: UInt64 = 0
    /// Where the current chunk starts in the stream.
    private var chunkOffset = 0

    public init(parameters: ChunkerParameters = .standard) {
        self.parameters = parameters
    }

    /// Bytes fed so far.
    public var bytesFed: Int { chunkOffset + pending.count }

    /// Takes the next bytes of the stream; calls `emit` for each chunk they complete.
    public mutating func feed(
        _ input: UnsafeRawBufferPointer, _ emit: (Chunk) throws -> Void
    ) rethrows {
        var start = 0
        while start < input.count {
            let rest = UnsafeRawBufferPointer(rebasing: input[start...])
            guard let length = findCut(rest) else {
                gather(rest)
                return
            }
            let piece = UnsafeRawBufferPointer(rebasing: rest[..<length])
            if pending.isEmpty {
                try emitChunk(piece, emit)
            } else {
                gather(piece)
                try emitPending(emit)
            }
            start += length
        }
    }

    /// Ends the stream: the bytes since the last boundary are the last chunk
    /// (shorter than `minimumSize`, maybe). An empty stream has no chunk.
    /// The chunker is ready for a new stream afterwards.
    public mutating func finish(_ emit: (Chunk) throws -> Void) rethrows {
        if !pending.isEmpty { try emitPending(emit) }
        chunkOffset = 0
        fingerprint = 0
    }

    /// Keeps bytes of a chunk that goes on past this input. The buffer is
    /// reserved whole at once, so that it never grows (and doubles) past `maximumSize`.
    private mutating func gather(_ bytes: UnsafeRawBufferPointer) {
        if pending.capacity < parameters.maximumSize { pending.reserveCapacity(parameters.maximumSize) }
        pending.append(contentsOf: bytes)
    }

    private mutating func emitChunk(_ bytes: UnsafeRawBufferPointer, _ emit: (Chunk) throws -> Void) rethrows {
        let offset = chunkOffset
        chunkOffset += bytes.count
        fingerprint = 0
        try emit(Chunk(offset: offset, bytes: bytes))
    }

    /// Hands out the chunk gathered in `pending` and empties it (keeping its
    /// storage, which a later chunk that spans inputs reuses). Emptied even when
    /// `emit` throws, so that the state stays that of a chunk boundary.
    private mutating func emitPending(_ emit: (Chunk) throws -> Void) rethrows {
        let offset = chunkOffset
        chunkOffset += pending.count
        fingerprint = 0
        defer { pending.removeAll(keepingCapacity: true) }
        try pending.withUnsafeBytes { try emit(Chunk(offset: offset, bytes: $0)) }
    }

    /// How many bytes of `input` complete the current chunk, or nil when all
    /// of them belong to it and it goes on. Updates the fingerprint either way.
    @inline(__always)
    private mutating func findCut(_ input: UnsafeRawBufferPointer) -> Int? {
        let seen = pending.count
        let p = parameters
        // Positions in the current chunk map to indexes of `input` by `- seen`.
        let hashFrom = max(p.minimumSize - seen, 0)
        let normalEnd = min(max(p.averageSize - seen, hashFrom), input.count)
        let hardEnd = min(p.maximumSize - seen, input.count)
        guard hashFrom < hardEnd else { return nil }
        let strict = p.strictMask
        let loose = p.looseMask
        let carried = fingerprint
        let (cut, fp): (Int?, UInt64) = p.gear.entries.withUnsafeBufferPointer { gear in
            var fp = carried
            var i = hashFrom
            while i < normalEnd {
                fp = (fp &<< 1) &+ gear[Int(input[i])]
                i += 1
                if fp & strict == 0 { return (i, fp) }
            }
            while i < hardEnd {
                fp = (fp &<< 1) &+ gear[Int(input[i])]
                i += 1
                if fp & loose == 0 { return (i, fp) }
            }
            return (seen + i >= p.maximumSize ? i : nil, fp)
        }
        fingerprint = fp
        return cut
    }
}
