import ArgumentParser

extension PGVaultCommand {
    struct ExportUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export-user", abstract: "Export everything held about one user as a zip package (not yet available).")
        func run() async throws {}
    }
}
