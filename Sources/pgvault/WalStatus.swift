import ArgumentParser

extension PGVaultCommand {
    struct WalStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "wal-status", abstract: "Check that WAL archiving works, so point-in-time recovery is possible (not yet available).")
        func run() async throws {}
    }
}
