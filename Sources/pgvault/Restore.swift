import ArgumentParser

extension PGVaultCommand {
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restore an archive into a database (not yet available).")
        func run() async throws {}
    }
}
