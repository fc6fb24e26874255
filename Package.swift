// swift-tools-version: 6.0
import PackageDescription

// Every target of ours builds in Swift 6 language mode with strict concurrency,
// and a warning fails the build.
let strict: [SwiftSetting] = [
    .unsafeFlags(["-warnings-as-errors"]),
]

let package = Package(
    name: "pgvault",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pgvault", targets: ["pgvault"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C libraries, found through pkg-config.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // glibc's malloc.h (mallopt), for the executable's heap setting.
        .systemLibrary(name: "CMalloc"),
        // zlib, only for the tests: age's published test vectors are zlib-compressed.
        .systemLibrary(name: "CZlib", path: "Tests/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Thin, safe Swift layers: each owns its C handles; no C pointer escapes.
        .target(name: "PGClient", dependencies: ["CLibPQ"], swiftSettings: strict),
        .target(name: "ZstdStream", dependencies: ["CZstd"], swiftSettings: strict),
        .target(name: "ArchiveIO", dependencies: ["CArchive"], swiftSettings: strict),
        .target(name: "CryptoDigest", dependencies: ["CCrypto"], swiftSettings: strict),
        .target(name: "HTTPClient", dependencies: ["CCurl"], swiftSettings: strict),
        // S3's protocol over HTTPClient: SigV4 (CryptoDigest's HMAC), AWS configuration, the requests.
        .target(name: "S3Client", dependencies: ["HTTPClient", "CryptoDigest"], swiftSettings: strict),
        // age v1 (X25519 recipients) over CryptoDigest's libcrypto primitives.
        .target(name: "AgeFormat", dependencies: ["CryptoDigest"], swiftSettings: strict),

        // Concurrency primitives above the C layers: one worker pool, one lock.
        .target(name: "Support", dependencies: ["PGClient", "CMalloc"], swiftSettings: strict),

        // SplitMix64's mixing function: the generator's random streams and the row digest use it.
        .target(name: "Mixing", swiftSettings: strict),

        // pgvault's own logic: migrations, backup, restore, verify, export.
        .target(
            name: "PGVaultCore",
            dependencies: ["PGClient", "Support", "ZstdStream", "ArchiveIO", "CryptoDigest", "AgeFormat", "Mixing", "S3Client"],
            swiftSettings: strict
        ),
        // The deterministic synthetic chat data generator, used only by `pgvault generate` and the tests.
        .target(name: "PGVaultGenerator", dependencies: ["PGClient", "Support", "Mixing"], swiftSettings: strict),
        .executableTarget(
            name: "pgvault",
            dependencies: [
                "PGVaultCore",
                "PGVaultGenerator",
                "AgeFormat",
                "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Test support: throwaway PostgreSQL clusters, temporary folders.
        .target(name: "TestSupport", dependencies: ["PGClient", "PGVaultCore", "Mixing", "S3Client", "HTTPClient"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "PGClientTests", dependencies: ["PGClient", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ZstdStreamTests", dependencies: ["ZstdStream", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ArchiveIOTests", dependencies: ["ArchiveIO", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SupportTests", dependencies: ["Support", "PGClient", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "S3ClientTests", dependencies: ["S3Client", "HTTPClient", "CryptoDigest", "TestSupport"], exclude: ["sigv4-test-suite"],
            swiftSettings: strict),
        .testTarget(name: "CryptoDigestTests", dependencies: ["CryptoDigest", "CCrypto"], swiftSettings: strict),
        .testTarget(
            name: "AgeFormatTests", dependencies: ["AgeFormat", "CryptoDigest", "CZlib", "TestSupport"], exclude: ["testkit"],
            swiftSettings: strict),
        .testTarget(
            name: "PGVaultCoreTests", dependencies: ["PGVaultCore", "PGVaultGenerator", "CryptoDigest", "AgeFormat", "TestSupport"],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
