import ArgumentParser

extension PGVaultCommand {
    struct ExportWorker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export-worker", abstract: "Process queued per-user export requests (not yet available).")
        func run() async throws {}
    }
}
