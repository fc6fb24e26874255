import PGVaultCore
import TestSupport
import Testing

/// The content-defined chunker that cuts each unit's COPY stream for the
/// deduplicating repository (docs/chunking.md). Small sizes (average 4 KiB)
/// keep the inputs small and still give hundreds of chunks per input.
@Suite("Chunker: content-defined chunks of a COPY stream")
struct ChunkerTests {
    static let small = try! ChunkerParameters(minimumSize: 1024, averageSize: 4096, maximumSize: 16384)

    enum Content: String, CaseIterable, CustomTestStringConvertible {
        case random, copyText
        var testDescription: String { rawValue }

        func bytes(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
            var rng = SplitMix(seed: seed)
            switch self {
            case .random:
                return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case .copyText:
                return ChunkerTests.copyText(count, rng: &rng)
            }
        }
    }

    /// Rows shaped like `COPY messages TO STDOUT`: ids, timestamps and words,
    /// tab-separated; repetitive, as real rows are, which a chunker must still cut.
    static func copyText(_ count: Int, rng: inout SplitMix) -> [UInt8] {
        let words = ["hello", "the", "deploy", "is", "done", "ok", "thanks", "see", "you", "at", "standup", "😀", "\\N"]
        var out: [UInt8] = []
        out.reserveCapacity(count + 256)
        var id = 1_000_000
        while out.count < count {
            id += 1 + rng.int(3)
            var row = "\(id)\t\(rng.int(100_000))\t\(rng.int(64_000))\t"
            for _ in 0..<(1 + rng.int(12)) { row += rng.pick(words) + " " }
            row += "\t2025-01-\(10 + rng.int(18)) 12:\(10 + rng.int(50)):00+00\t\\N\tf\n"
            out.append(contentsOf: row.utf8)
        }
        return Array(out.prefix(count))
    }

    /// The chunks of `data`, fed `feedSize` bytes at a time.
    static func chunks(
        of data: [UInt8], feedSize: Int = .max, parameters: ChunkerParameters = small
    ) -> [(offset: Int, bytes: [UInt8])] {
        var chunker = Chunker(parameters: parameters)
        var out: [(offset: Int, bytes: [UInt8])] = []
        let collect = { (chunk: Chunker.Chunk) in out.append((chunk.offset, Array(chunk.bytes))) }
        data.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                let end = start + min(feedSize, all.count - start)
                chunker.feed(UnsafeRawBufferPointer(rebasing: all[start..<end]), collect)
                start = end
            }
        }
        chunker.finish(collect)
        return out
    }

    @Test("the same input gives the same boundaries, also from a chunker reused after finish()",
          arguments: Content.allCases)
    func deterministic(content: Content) {
        let data = content.bytes(300_000)
        let first = Self.chunks(of: data).map(\.offset)
        #expect(first.count > 20)
        #expect(Self.chunks(of: data).map(\.offset) == first)

        var chunker = Chunker(parameters: Self.small)
        for _ in 0..<2 {
            var offsets: [Int] = []
            data.withUnsafeBytes { chunker.feed($0) { offsets.append($0.offset) } }
            chunker.finish { offsets.append($0.offset) }
            #expect(offsets == first)
        }
    }

    @Test("every chunk but the last is within min…max, and the sizes centre near the average",
          arguments: Content.allCases)
    func sizesWithinBounds(content: Content) throws {
        let p = Self.small
        let sizes = Self.chunks(of: content.bytes(1_000_000)).map(\.bytes.count)
        let last = try #require(sizes.last)
        for size in sizes.dropLast() {
            #expect(size >= p.minimumSize && size <= p.maximumSize, "chunk of \(size) bytes")
        }
        #expect(last > 0 && last <= p.maximumSize)
        // Content decides the cuts: were they all forced at the maximum, the mean would be 16 KiB.
        let mean = Double(sizes.reduce(0, +)) / Double(sizes.count)
        #expect(mean > Double(p.averageSize) * 0.75 && mean < Double(p.averageSize) * 1.5, "mean \(mean)")
        #expect(sizes.filter { $0 == p.maximumSize }.count < sizes.count / 20)
    }

    @Test("the standard sizes are docs/chunking.md's choice, and hold on a stream of several chunks")
    func standardParameters() throws {
        let p = ChunkerParameters.standard
        #expect([p.minimumSize, p.averageSize, p.maximumSize, p.normalization] == [256 << 10, 1 << 20, 4 << 20, 2])
        #expect(p.gear == GearTable())
        // Eight random bytes per draw: a debug build makes 12 MiB one byte at a time slowly.
        var rng = SplitMix(seed: 3)
        let data = (0..<(12 << 17)).map { _ in rng.next() }.withUnsafeBytes { Array($0) }
        let sizes = Self.chunks(of: data, feedSize: 65536, parameters: p).map(\.bytes.count)
        #expect(sizes.count >= 6 && sizes.count <= 14, "\(sizes)")
        for size in sizes.dropLast() { #expect(size >= p.minimumSize && size < p.maximumSize, "\(sizes)") }
    }

    struct Refused: Error {}

    @Test("an error thrown while a chunk is handed out reaches the caller of feed() and finish()")
    func emitErrorPropagates() {
        var chunker = Chunker(parameters: Self.small)
        let data = Content.random.bytes(50_000)
        #expect(throws: Refused.self) {
            try data.withUnsafeBytes { try chunker.feed($0) { _ in throw Refused() } }
        }
        var tail = Chunker(parameters: Self.small)
        data.prefix(500).withUnsafeBytes { tail.feed($0) { _ in Issue.record("no chunk is complete yet") } }
        #expect(throws: Refused.self) { try tail.finish { _ in throw Refused() } }
    }

    @Test("a stream without cut points is cut at the maximum size")
    func constantInputCutAtMaximum() {
        let sizes = Self.chunks(of: [UInt8](repeating: 0, count: 100_000), feedSize: 4096).map(\.bytes.count)
        #expect(sizes == Array(repeating: Self.small.maximumSize, count: 6) + [100_000 - 6 * Self.small.maximumSize])
    }

    static let splits: [(Content, Int)] = Content.allCases.flatMap { c in [1, 7, 4096, Int.max].map { (c, $0) } }

    @Test("chunks concatenate to the input, at the same boundaries however the input is fed",
          arguments: splits)
    func concatenation(content: Content, feedSize: Int) {
        // Feeding one byte at a time is slow in a debug build: a shorter input for it.
        let data = content.bytes(feedSize == 1 ? 60_000 : 400_000)
        let whole = Self.chunks(of: data)
        let fed = Self.chunks(of: data, feedSize: feedSize)
        #expect(fed.map(\.offset) == whole.map(\.offset))
        #expect(fed.flatMap(\.bytes) == data)
        var expected = 0
        for chunk in fed {
            #expect(chunk.offset == expected)
            expected += chunk.bytes.count
        }
    }

    enum Edit: String, CaseIterable, CustomTestStringConvertible {
        case overwriteByte, insert100Bytes, delete100Bytes, insertRowAtStart
        var testDescription: String { rawValue }

        func apply(to data: [UInt8]) -> [UInt8] {
            var out = data
            let middle = data.count / 2
            switch self {
            case .overwriteByte: out[middle] ^= 0x5A
            case .insert100Bytes: out.insert(contentsOf: (0..<100).map { UInt8($0) }, at: middle)
            case .delete100Bytes: out.removeSubrange(middle..<(middle + 100))
            case .insertRowAtStart: out.insert(contentsOf: Array("42\t7\t9\tnew row\t\\N\tf\n".utf8), at: 0)
            }
            return out
        }
    }

    @Test("an edit changes only the chunks around it; the rest deduplicate",
          arguments: Content.allCases, Edit.allCases)
    func editChangesFewChunks(content: Content, edit: Edit) {
        let data = content.bytes(1_000_000)
        let before = Self.chunks(of: data).map(\.bytes)
        let after = Self.chunks(of: edit.apply(to: data)).map(\.bytes)
        let known = Set(before)
        let new = after.filter { !known.contains($0) }
        // One chunk holds the edit; at most two more before the cut points line up again.
        #expect(new.count >= 1 && new.count <= 3, "\(new.count) new chunks of \(after.count)")
        #expect(abs(after.count - before.count) <= 2)
    }

    @Test("empty input gives no chunk")
    func emptyInput() {
        #expect(Self.chunks(of: []).isEmpty)
        var chunker = Chunker(parameters: Self.small)
        var count = 0
        [UInt8]().withUnsafeBytes { chunker.feed($0) { _ in count += 1 } }
        chunker.finish { _ in count += 1 }
        #expect(count == 0)
        #expect(chunker.bytesFed == 0)
    }

    @Test("a chunker holds back at most one maximum-size chunk")
    func bufferedBytesBounded() {
        var chunker = Chunker(parameters: Self.small)
        let data = Content.copyText.bytes(200_000)
        var emitted = 0
        data.withUnsafeBytes { all in
            for start in stride(from: 0, to: all.count, by: 777) {
                let end = min(start + 777, all.count)
                chunker.feed(UnsafeRawBufferPointer(rebasing: all[start..<end])) { emitted += $0.bytes.count }
                #expect(chunker.bytesFed - emitted < Self.small.maximumSize)
            }
        }
    }

    /// The format pin: another gear table or another cut rule puts boundaries
    /// elsewhere, and a repository's old chunks stop deduplicating against new
    /// ones. Change these numbers only with a new repository format.
    @Test("the default gear table and the boundaries of a fixed stream do not change")
    func formatPin() {
        let gear = GearTable()
        #expect(gear.entries.count == 256)
        #expect(gear.entries[0] == 0x9CF3_6A0B_D5A8_0A40)
        #expect(gear.entries[255] == 0x9EF2_1A69_6C46_B169)
        let offsets = Self.chunks(of: Content.random.bytes(100_000, seed: 1)).map(\.offset)
        // Cross-checked with an independent implementation of docs/chunking.md's rule.
        #expect(offsets == [
            0, 2849, 7398, 13908, 19151, 23525, 28159, 33024, 37134, 41250, 46746,
            50515, 55281, 56576, 60692, 65485, 69976, 75880, 81327, 86592, 90245, 95560,
        ])
        #expect(GearTable(seed: 1).entries != gear.entries)
    }

    static let invalid: [(min: Int?, avg: Int, max: Int?, mentions: String)] = [
        (nil, 3000, nil, "average chunk size 3000"),
        (nil, 128, nil, "average chunk size 128"),
        (4096, 4096, nil, "minimum chunk size 4096"),
        (32, 4096, nil, "minimum chunk size 32"),
        (nil, 4096, 4096, "maximum chunk size 4096"),
        (nil, 1 << 26, 1 << 27, "maximum chunk size 134217728"),
    ]

    @Test("sizes it cannot work with are refused, naming the size and a fix", arguments: invalid)
    func invalidParameters(min: Int?, avg: Int, max: Int?, mentions: String) {
        let error = #expect(throws: PGVaultError.self) {
            try ChunkerParameters(minimumSize: min, averageSize: avg, maximumSize: max)
        }
        #expect(error?.description.contains(mentions) == true, "\(String(describing: error))")
        #expect(error?.description.contains("; use ") == true)
    }
}
