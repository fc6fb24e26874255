import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension LocalFolderStore {
    /// A listing read from the folders themselves, so it never lags; only
    /// regular files are objects (a symbolic link, a socket is skipped), and
    /// temporary files of puts in progress are not listed.
    public func list(prefix: String, delimited: Bool) throws -> ObjectListing {
        try ObjectKey.validatePrefix(prefix)
        let (folder, start) = prefix.hasSuffix("/")
            ? (String(prefix.dropLast()), "") : (ObjectKey.folder(of: prefix), ObjectKey.leaf(of: prefix))
        var listing = ObjectListing(objects: [])
        try walk(folder, namesStartingWith: start, delimited: delimited, into: &listing)
        listing.objects.sort { $0.key < $1.key }
        listing.prefixes.sort()
        return listing
    }

    private func walk(_ folder: String, namesStartingWith start: String, delimited: Bool, into listing: inout ObjectListing) throws {
        let dir = folder.isEmpty ? root : root + "/" + folder
        guard let stream = opendir(dir) else {
            // A folder that is not there holds no objects.
            if errno == ENOENT || errno == ENOTDIR { return }
            throw failure("list", folder.isEmpty ? "" : folder + "/", errno)
        }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != "..", name.hasPrefix(start), !name.contains(ObjectKey.temporaryMarker) { names.append(name) }
        }
        closedir(stream)
        for name in names {
            let key = folder.isEmpty ? name : folder + "/" + name
            var st = stat()
            guard lstat(root + "/" + key, &st) == 0 else { continue }  // deleted meanwhile
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                listing.objects.append(ObjectInfo(key: key, size: Int64(st.st_size)))
            case S_IFDIR where delimited:
                listing.prefixes.append(key + "/")
            case S_IFDIR:
                try walk(key, namesStartingWith: "", delimited: false, into: &listing)
            default:
                continue
            }
        }
    }
}
