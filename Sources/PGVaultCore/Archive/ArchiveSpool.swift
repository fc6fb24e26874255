import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// An archive in the file form read from a stream (`restore -`: standard
/// input), copied whole to a temporary file before anything else is done.
///
/// Why a copy and not a restore straight off the stream: the tar holds
/// `manifest.json` last (a tar cut short has none, so it is refused as
/// incomplete), and a restore needs the manifest first, checks every member's
/// presence and size before it changes the target, and reads members over
/// --jobs connections at once, in its own order. A pipe can be read once,
/// front to back. The copy takes as much disk as the archive, under $TMPDIR,
/// in a folder only the owner can open (0700, the file 0600); it is removed
/// when the restore ends, failed or not (a SIGKILLed run leaves
/// `$TMPDIR/pgvault-restore-stdin-*` behind).
public final class ArchiveSpool: Sendable {
    public let path: String
    public let bytes: Int64
    private let folder: String

    /// Copies `fileDescriptor` to its end. `label` names the stream in messages.
    public init(copying fileDescriptor: Int32, label: String, directory: String) throws {
        folder = directory + "/pgvault-restore-stdin-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        path = folder + "/archive.tar"
        try Files.makeDirectory(folder)
        // A second SIGINT/SIGTERM quits at once: the copy goes with it.
        PartialOutputs.register(folder)
        var total: Int64 = 0
        do {
            // Dropped without close(): a spool need not be durable, so no fsync.
            let out = try OutputFile(creating: path)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                // A writer that stalls must not keep a signal waiting: wait for
                // data a quarter second at a time, checking for a cancel between.
                try Cancellation.check()
                var ready = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
                let polled = poll(&ready, 1, 250)
                if polled == 0 || (polled < 0 && errno == EINTR) { continue }
                let n = read(fileDescriptor, buffer.baseAddress, buffer.count)
                if n == 0 { break }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw PGVaultError.archive("cannot read the archive from \(label): \(String(cString: strerror(errno)))")
                }
                do {
                    try out.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                } catch let error as FileError {
                    throw PGVaultError.archive("cannot copy the archive from \(label) to \(path) (after \(total) bytes): \(String(cString: strerror(error.code))). The copy needs as much free space as the archive: point TMPDIR at a filesystem with room, or give restore the archive's path instead of -")
                }
                total += Int64(n)
            }
        } catch {
            Self.remove(folder)
            throw error
        }
        bytes = total
        guard total > 0 else {
            Self.remove(folder)
            throw PGVaultError.archive("\(label) held no data: pipe in a tar written by pgvault backup --output - (or --format file)")
        }
    }

    deinit { Self.remove(folder) }

    private static func remove(_ folder: String) {
        Files.removeTree(folder)
        PartialOutputs.forget(folder)
    }

    /// Standard input copied under $TMPDIR (or /tmp), on a thread of its own.
    public static func standardInput() async throws -> ArchiveSpool {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        return try await Blocking.run("pgvault-stdin") {
            try ArchiveSpool(copying: 0, label: "standard input", directory: directory)
        }
    }
}
