import ArgumentParser

extension PGVaultCommand {
    struct ListBackups: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the backups in a repository (not yet available).")
        func run() async throws {}
    }
}
