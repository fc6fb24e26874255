import Foundation

/// A pause that only a test asks for, through an environment variable holding
/// seconds, so that a test can send a signal at a known step (after the
/// server's part of a backup, when only local work is left). It ignores
/// cancellation on purpose: the step after it must notice the signal itself.
enum TestPause {
    static func here(_ step: String, variable: String) {
        guard let text = ProcessInfo.processInfo.environment[variable], let seconds = Double(text), seconds > 0 else { return }
        FileHandle.standardError.write(Data("pgvault: test pause (\(step)) for \(text) s\n".utf8))
        Thread.sleep(forTimeInterval: seconds)
    }
}
