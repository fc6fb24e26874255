import ArgumentParser

extension PGVaultCommand {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "backup", abstract: "Take a consistent, parallel backup into a zstd-compressed archive (not yet available).")
        func run() async throws {}
    }
}
