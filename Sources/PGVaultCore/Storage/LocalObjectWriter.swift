import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An object of a ``LocalFolderStore`` being written: a temporary file in the
/// key's folder (0600), fsynced, closed and renamed over the key at the
/// commit (linked, with `ifAbsent`, which fails if the key exists), then the
/// folder fsynced. Dropped without a commit, the temporary file is removed;
/// it is listed in ``PartialOutputs`` meanwhile, so a quit-at-once removes it
/// too, and a cancelled run commits nothing.
final class LocalObjectWriter: ObjectWriter {
    let key: String
    private let store: LocalFolderStore
    private var fd: Int32
    private let temp: String
    private let folder: String
    private let ifAbsent: Bool
    private(set) var bytesWritten: Int64 = 0
    private var done = false

    init(store: LocalFolderStore, key: String, fd: Int32, temp: String, folder: String, ifAbsent: Bool) {
        self.store = store
        self.key = key
        self.fd = fd
        self.temp = temp
        self.folder = folder
        self.ifAbsent = ifAbsent
        PartialOutputs.register(temp)
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !done else { throw PGVaultError.io("object '\(key)' in '\(store.root)' was already committed or aborted; it cannot be written to") }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw store.failure("write", key, errno)
            }
            offset += n
        }
        bytesWritten += Int64(bytes.count)
    }

    @discardableResult
    func commit() throws -> Int64 {
        guard !done else { throw PGVaultError.io("object '\(key)' in '\(store.root)' was already committed or aborted") }
        do {
            guard fsync(fd) == 0 else { throw store.failure("write", key, errno) }
            let closed = close(fd)
            fd = -1
            guard closed == 0 else { throw store.failure("write", key, errno) }
            try PartialOutputs.publishing(temp) { try store.place(temp, as: key, ifAbsent: ifAbsent) }
        } catch {
            abort()
            throw error
        }
        done = true
        try store.syncFolder(folder, for: key)
        return bytesWritten
    }

    func abort() {
        guard !done else { return }
        done = true
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temp)
        PartialOutputs.forget(temp)
    }
}
