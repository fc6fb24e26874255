// Measures the chunker on real COPY streams, for docs/chunking.md. Built by
// scripts/measure-chunking.sh with the package's Chunking sources; not part of
// the package.
//
//   measure-chunking BASE OTHER VARIANT...
//
// BASE is one partition's `COPY ... TO STDOUT (FORMAT binary)`, OTHER another
// partition's (the source of "new" rows), and each VARIANT is a file named
// NAME.bin: BASE after a change made by the server (an UPDATE, say). Two more
// variants are made here, at row boundaries of BASE: 100 rows of OTHER inserted
// in the middle, and 1000 appended at the end. For each candidate average size
// it prints the chunks of BASE, and for each variant the chunks and bytes that
// are not already among BASE's chunks (what a backup would add), then the
// chunker's throughput in CPU time.
import Foundation
import Mixing

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: measure-chunking BASE OTHER [VARIANT.bin]...\n".utf8))
    exit(2)
}

func load(_ path: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("measure-chunking: cannot read \(path)\n".utf8))
        exit(1)
    }
    return [UInt8](data)
}

/// Byte ranges of the rows of a binary COPY stream, and where its trailer starts.
func rows(_ stream: [UInt8]) -> (header: Int, rows: [Range<Int>], trailer: Int) {
    func int(_ at: Int, _ width: Int) -> Int {
        var v = 0
        for i in 0..<width { v = v << 8 | Int(stream[at + i]) }
        return width == 2 ? Int(Int16(truncatingIfNeeded: v)) : Int(Int32(truncatingIfNeeded: v))
    }
    let header = 11 + 4 + 4 + int(15, 4)
    var at = header
    var out: [Range<Int>] = []
    while true {
        let fields = int(at, 2)
        if fields == -1 { return (header, out, at) }
        var end = at + 2
        for _ in 0..<fields {
            let length = int(end, 4)
            end += 4 + max(length, 0)
        }
        out.append(at..<end)
        at = end
    }
}

/// A 128-bit content hash, ample to tell a few thousand chunks apart.
struct ChunkID: Hashable {
    let a: UInt64, b: UInt64
    init(_ bytes: UnsafeRawBufferPointer) {
        var a: UInt64 = 0x243F_6A88_85A3_08D3, b = UInt64(bytes.count)
        var i = 0
        while i + 8 <= bytes.count {
            let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            a = SplitMix64.finalize(a ^ w)
            b = SplitMix64.finalize(b &+ w &+ a)
            i += 8
        }
        while i < bytes.count {
            a = SplitMix64.finalize(a ^ UInt64(bytes[i]))
            i += 1
        }
        self.a = a
        self.b = b
    }
}

func chunk(_ data: [UInt8], _ parameters: ChunkerParameters) -> [(ChunkID, Int)] {
    var chunker = Chunker(parameters: parameters)
    var out: [(ChunkID, Int)] = []
    data.withUnsafeBytes { all in
        var start = 0
        while start < all.count {  // fed as COPY delivers it: in pieces
            let end = min(start + 65536, all.count)
            chunker.feed(UnsafeRawBufferPointer(rebasing: all[start..<end])) { out.append((ChunkID($0.bytes), $0.bytes.count)) }
            start = end
        }
    }
    chunker.finish { out.append((ChunkID($0.bytes), $0.bytes.count)) }
    return out
}

let base = load(arguments[1])
let other = load(arguments[2])
let (header, baseRows, trailer) = rows(base)
let otherRows = rows(other).rows
func spliced(at row: Int, count: Int) -> [UInt8] {
    var out = Array(base[0..<baseRows[row].lowerBound])
    for r in otherRows.prefix(count) { out += other[r] }
    out += base[baseRows[row].lowerBound...]
    return out
}
var variants: [(String, [UInt8])] = arguments.dropFirst(3).map {
    (URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent, load($0))
}
variants.append(("insert-100-rows-middle", spliced(at: baseRows.count / 2, count: 100)))
var appended = Array(base[0..<trailer])
for r in otherRows.prefix(1000) { appended += other[r] }
appended += base[trailer...]
variants.append(("append-1000-rows", appended))

print("base: \(base.count) bytes, \(baseRows.count) rows (header \(header) bytes)")
let mib = 1 << 20
// The candidate averages in KiB; MEASURE_AVERAGES="16 64" tries others.
let averages = (ProcessInfo.processInfo.environment["MEASURE_AVERAGES"] ?? "256 512 1024 2048")
    .split(separator: " ").compactMap { Int($0) }.map { $0 << 10 }
for average in averages {
    let parameters = try ChunkerParameters(averageSize: average)
    let chunks = chunk(base, parameters)
    let known = Set(chunks.map(\.0))
    let sizes = chunks.map(\.1)
    print(String(format: "avg %4d KiB: %4d chunks, mean %.2f MiB, min %.2f, max %.2f (last excluded)",
                 average >> 10, chunks.count, Double(base.count) / Double(chunks.count) / Double(mib),
                 Double(sizes.dropLast().min() ?? 0) / Double(mib), Double(sizes.dropLast().max() ?? 0) / Double(mib)))
    for (name, data) in variants {
        let new = chunk(data, parameters).filter { !known.contains($0.0) }
        let bytes = new.reduce(0) { $0 + $1.1 }
        print(String(format: "    %-22@ %3d new chunks, %8.2f MiB new (%.1f %% of the partition)",
                     name as NSString, new.count, Double(bytes) / Double(mib), 100 * Double(bytes) / Double(base.count)))
    }
}

func cpuNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
var best = UInt64.max
for _ in 0..<5 {
    var chunker = Chunker()
    var count = 0
    let start = cpuNanoseconds()
    base.withUnsafeBytes { all in
        for from in stride(from: 0, to: all.count, by: 65536) {
            chunker.feed(UnsafeRawBufferPointer(rebasing: all[from..<min(from + 65536, all.count)])) { _ in count += 1 }
        }
    }
    chunker.finish { _ in count += 1 }
    best = min(best, cpuNanoseconds() - start)
}
print(String(format: "throughput (standard parameters, CPU time, best of 5): %.0f MB/s", Double(base.count) / Double(best) * 1e3))
