import ArchiveIO
import CArchive
import Foundation
import TestSupport

/// What the extraction tests look at in their scratch folder.
extension TestScratch.Folder {
    /// Every path below the folder, relative, sorted (symlinks not followed).
    func listing() -> [String] {
        (FileManager.default.subpaths(atPath: path) ?? []).sorted()
    }

    func permissions(_ name: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: self[name])
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}

/// A deterministic byte pattern of any length, producible chunk by chunk.
enum Pattern {
    static func byte(at index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: index &* 31 &+ (index >> 9))
    }

    static func bytes(_ range: Range<Int>) -> [UInt8] {
        range.map(byte(at:))
    }
}

/// Reads every entry of `reader`, returning the entries with their data.
func readAll(_ reader: ArchiveReader) throws -> [(info: ArchiveEntryInfo, data: [UInt8])] {
    var result: [(info: ArchiveEntryInfo, data: [UInt8])] = []
    while let info = try reader.nextEntry() {
        var data: [UInt8] = []
        try reader.readData { data.append(contentsOf: $0) }
        result.append((info, data))
    }
    return result
}

/// An entry of a hand-crafted (possibly hostile) archive.
struct CraftedEntry {
    enum Kind { case file(String), directory, symlink(to: String), hardlink(to: String), fifo }
    var name: String
    var kind: Kind
}

/// Writes an archive with the raw libarchive API, bypassing ArchiveWriter's
/// name checks, to test that the reader refuses what a hostile archive holds.
func craftArchive(at path: String, zip: Bool = false, _ entries: [CraftedEntry]) throws {
    struct CraftError: Error, CustomStringConvertible { let description: String }
    guard let archive = archive_write_new() else { throw CraftError(description: "archive_write_new") }
    defer { archive_write_free(archive) }
    func check(_ rc: Int32, _ what: String) throws {
        if rc != ARCHIVE_OK {
            throw CraftError(description: "\(what): \(archive_error_string(archive).map { String(cString: $0) } ?? "?")")
        }
    }
    try check(zip ? archive_write_set_format_zip(archive) : archive_write_set_format_pax_restricted(archive), "format")
    try check(archive_write_open_filename(archive, path), "open")
    for item in entries {
        guard let entry = archive_entry_new() else { throw CraftError(description: "archive_entry_new") }
        defer { archive_entry_free(entry) }
        archive_entry_copy_pathname(entry, item.name)
        archive_entry_set_perm(entry, 0o644)
        var data: [UInt8] = []
        switch item.kind {
        case .file(let text):
            data = Array(text.utf8)
            archive_entry_set_filetype(entry, 0o100000)
        case .directory: archive_entry_set_filetype(entry, 0o040000)
        case .symlink(let target):
            archive_entry_set_filetype(entry, 0o120000)
            archive_entry_copy_symlink(entry, target)
        case .hardlink(let target):
            archive_entry_set_filetype(entry, 0o100000)
            archive_entry_copy_hardlink(entry, target)
        case .fifo: archive_entry_set_filetype(entry, 0o010000)
        }
        archive_entry_set_size(entry, Int64(data.count))
        try check(archive_write_header(archive, entry), "header \(item.name)")
        if !data.isEmpty {
            guard archive_write_data(archive, data, data.count) == data.count else {
                throw CraftError(description: "data \(item.name)")
            }
        }
    }
    try check(archive_write_close(archive), "close")
}

/// Collects a value from another thread.
final class ThreadResult<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)
    private var value: Value?

    func set(_ newValue: Value) {
        lock.withLock { value = newValue }
        done.signal()
    }

    func wait() -> Value? {
        done.wait()
        return lock.withLock { value }
    }
}
