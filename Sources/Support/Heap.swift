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
