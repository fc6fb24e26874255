import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An object of a ``LocalFolderStore`` being written: a temporary file in the
/// key's folder (0600), fsynced, closed and renamed over the key at the
/// commit (linked, with `ifAbsent`, which fails if the key exists), then the
/// folder fsynced (both fsyncs at the store's ``DeferredSync/flush()``
/// instead, when it has one). Dropped without a commit, the temporary file is removed;
/// it is listed in ``PartialOutputs`` meanwhile, so a quit-at-once removes it
/// too, and a cancelled run commits nothing.
final class LocalObjectWriter: ObjectWriter {
    let key: String
    private let store: LocalFolderStore
    /// The temporary file (``OutputFile``: 0600, `O_EXCL`, fsynced at its
    /// close); nil once committed or aborted.
    private var file: OutputFile?
    private let folder: String
    private let ifAbsent: Bool
    private(set) var bytesWritten: Int64 = 0

    init(store: LocalFolderStore, key: String, file: OutputFile, folder: String, ifAbsent: Bool) {
        self.store = store
        self.key = key
        self.file = file
        self.folder = folder
        self.ifAbsent = ifAbsent
        PartialOutputs.register(file.path)
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let file else { throw PGVaultError.io("object '\(key)' in '\(store.root)' was already committed or aborted; it cannot be written to") }
        do {
            try file.write(bytes)
        } catch let error as FileError {
            throw store.failure("write", key, error.code)
        }
        bytesWritten += Int64(bytes.count)
    }

    @discardableResult
    func commit() throws -> Int64 {
        guard let file else { throw PGVaultError.io("object '\(key)' in '\(store.root)' was already committed or aborted") }
        do {
            try file.close(sync: store.deferredSync == nil)
            try PartialOutputs.publishing(file.path) { try store.place(file.path, as: key, ifAbsent: ifAbsent) }
            store.deferredSync?.file(store.root + "/" + key)
        } catch {
            abort()
            throw (error as? FileError).map { store.failure("write", key, $0.code) } ?? error
        }
        self.file = nil
        PartialOutputs.forget(file.path)
        try store.syncFolder(folder, for: key)
        return bytesWritten
    }

    func abort() {
        guard let file else { return }
        self.file = nil
        unlink(file.path)  // the descriptor closes with the OutputFile
        PartialOutputs.forget(file.path)
    }
}
