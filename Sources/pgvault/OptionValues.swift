import ArgumentParser
import PGVaultCore
import PGVaultGenerator

// Options with a fixed set of values parse into these types, so ArgumentParser
// rejects a wrong value (exit 64, naming the accepted ones) and --help lists them.

extension BackupOptions.Form: ExpressibleByArgument {}

extension RestoreOptions.Order: ExpressibleByArgument {}
extension RestoreOptions.Verification: ExpressibleByArgument {}

extension ColdArchiveOptions.ReferencingRows: ExpressibleByArgument {}

/// backup's `--copy-format`: binary COPY where the column types allow it, or text for all.
enum CopyFormatChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, text
}

/// generate's `--scale`: one of ``GeneratorConfig/scaleNames``.
struct ScaleName: ExpressibleByArgument {
    let name: String

    init?(argument: String) {
        guard GeneratorConfig.scaleNames.contains(argument) else { return nil }
        name = argument
    }

    static var allValueStrings: [String] { GeneratorConfig.scaleNames }
    var defaultValueDescription: String { name }
}

/// `--lock-wait-timeout`: a duration (``DurationText``; a lone number is
/// milliseconds, as PostgreSQL reads it), kept in a form lock_timeout accepts.
struct LockTimeout: ExpressibleByArgument {
    let postgres: String

    init?(argument: String) {
        guard let value = DurationText.lockTimeout(argument) else { return nil }
        postgres = value
    }

    var defaultValueDescription: String { postgres }
}

/// A duration in seconds (``DurationText``; a lone number is seconds), zero
/// included: the command says what range it takes.
struct Seconds: ExpressibleByArgument {
    let value: Double

    init?(argument: String) {
        guard let value = DurationText.length(argument, bare: .seconds) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { DurationText.format(value) }
}
