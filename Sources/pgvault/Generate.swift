import ArgumentParser

extension PGVaultCommand {
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate synthetic chat data (not yet available).")
        func run() async throws {}
    }
}
