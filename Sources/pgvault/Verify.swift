import ArgumentParser

extension PGVaultCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "verify", abstract: "Prove what an archive holds and what a restore produced (not yet available).")
        func run() async throws {}
    }
}
