import CMalloc

/// The process heap (glibc's malloc).
public enum Heap {
    /// Gives the pages of freed memory back to the system. A restore parses
    /// large things once (the manifest, the schema scripts: tens of MB at
    /// 10,000 partitions) into many small blocks, interleaved with what it
    /// keeps; once they are freed, the holes stay resident until this is
    /// called (glibc returns only the top of the heap by itself).
    public static func releaseFreePages() {
        _ = malloc_trim(0)
    }
}

extension Heap {
    /// Bytes the heap has given out and not had back (glibc's `mallinfo2`:
    /// small blocks and mapped ones): what a structure costs, measured as
    /// the difference around its making.
    public static func bytesInUse() -> Int {
        let info = mallinfo2()
        return Int(info.uordblks + info.hblkhd)
    }
}

extension Array {
    /// A copy with room for its elements only: an array grown by appending
    /// has up to as much room again, which a structure kept for a whole
    /// restore need not hold.
    public func trimmed() -> [Element] {
        [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = buffer.initialize(fromContentsOf: self)
        }
    }
}
