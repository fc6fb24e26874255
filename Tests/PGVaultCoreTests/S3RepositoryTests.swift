import Foundation
@testable import PGVaultCore
import Testing
import TestSupport

/// A format-2 repository kept in S3 (moto), reached through `--repo`'s text.
@Suite("repository: s3:// locations")
struct S3RepositoryTests {
    @Test("--repo text: s3:// URLs and folders; bad bucket names are usage errors")
    func locations() throws {
        #expect(RepositoryLocation("s3://bkt/backups/nightly") == .s3("s3://bkt/backups/nightly"))
        #expect(RepositoryLocation("/srv/repo") == .folder("/srv/repo"))
        #expect(try S3ObjectStore.parse("s3://bkt/backups/nightly") == ("bkt", "backups/nightly/"))
        #expect(try S3ObjectStore.parse("s3://bkt") == ("bkt", ""))
        for bad in ["s3://B", "s3://Upper-Case/x", "s3://-dash/x", "s3://ok-bucket/../x"] {
            let error = try #require(throws: PGVaultError.self) { _ = try S3ObjectStore.parse(bad) }
            #expect(error.kind == .usage)
        }
    }

    @Test("repo init and open through an s3:// location, configured from the environment")
    func createAndOpen() throws {
        let server = try TestS3Server.shared()
        let bucket = try server.makeBucket()
        let keys = try TestScratch.Folder("s3-repo-keys")
        defer { keys.remove() }
        let location = RepositoryLocation("s3://\(bucket)/repos/one")
        var environment = server.environment
        environment["HOME"] = keys.path
        let store = try location.store(environment: environment)
        #expect(store.location == "s3://\(bucket)/repos/one/")
        let (created, keyFile) = try ChunkRepository.create(store: store, recipients: [], encrypted: false, keyFile: keys["repo.key"])
        let opened = try ChunkRepository.open(store: try location.store(environment: environment), credentials: .init(keyFile: keyFile))
        #expect(opened.config.id == created.config.id)
        #expect(try opened.entries().isEmpty)
        // A second init into the same prefix is refused: it is not empty.
        let again = try #require(throws: PGVaultError.self) {
            _ = try ChunkRepository.create(store: store, recipients: [], encrypted: false, keyFile: keys["other.key"])
        }
        #expect(again.description.contains("not empty"))
    }
}
