import Foundation

/// A pause that only a test asks for, through an environment variable holding
/// seconds, so that a test can send a signal at a known step (after the
/// server's part of a backup, when only local work is left; after the Nth file
/// of an export package). It ignores cancellation on purpose: the step after it
/// must notice the signal itself.
enum TestPause {
    static func here(_ step: String, variable: String) {
        guard let text = ProcessInfo.processInfo.environment[variable], let seconds = Double(text), seconds > 0 else { return }
        pause("(\(step))", seconds: text)
    }

    /// With PGVAULT_TEST_EXPORT_PAUSE_AFTER_FILES=N, an export (export-user or
    /// export-worker) stops for PGVAULT_TEST_EXPORT_PAUSE_SECONDS (default 60)
    /// after the Nth file of each package, so a test can kill it mid-export
    /// (docs/export-format.md, "Testing hooks").
    /// Read once: copying the environment for every file was a quarter of
    /// the CPU of an export of 10,000 channels.
    private static let exportPause: (files: Int, seconds: String)? = {
        let env = ProcessInfo.processInfo.environment
        guard let files = env["PGVAULT_TEST_EXPORT_PAUSE_AFTER_FILES"].flatMap({ Int($0) }) else { return nil }
        return (files, env["PGVAULT_TEST_EXPORT_PAUSE_SECONDS"].flatMap { Double($0) == nil ? nil : $0 } ?? "60")
    }()

    static func afterExportFile(_ files: Int, path: String) {
        guard let pause = exportPause, pause.files == files else { return }
        self.pause("after \(files) files (last \(path))", seconds: pause.seconds)
    }

    private static func pause(_ what: String, seconds text: String) {
        guard let seconds = Double(text), seconds > 0 else { return }
        FileHandle.standardError.write(Data("pgvault: test pause \(what) for \(text) s\n".utf8))
        Thread.sleep(forTimeInterval: seconds)
    }
}
