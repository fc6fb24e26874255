import ArgumentParser

extension PGVaultCommand {
    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Apply a retention policy to a backup repository (not yet available).")
        func run() async throws {}
    }
}
