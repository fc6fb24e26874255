/// A label `--label NAME=VALUE` adds to every sample of wal-status's
/// Prometheus output. The name is checked here, before any work: a bad one
/// would make node_exporter reject the whole file.
public struct WalPrometheusLabel: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let value: String

    /// Parses `NAME=VALUE` (the value may be empty and may hold `=`).
    public init(parsing text: String) throws {
        guard let eq = text.firstIndex(of: "=") else { throw PGVaultError.usage("'\(text)' is not NAME=VALUE") }
        name = String(text[..<eq])
        value = String(text[text.index(after: eq)...])
        guard Self.isValidName(name) else { throw PGVaultError.usage("'\(name)' is not a Prometheus label name") }
    }

    /// Prometheus's label names: `[a-zA-Z_][a-zA-Z0-9_]*`, and `__` starts
    /// only the names Prometheus keeps for itself.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } && !name.hasPrefix("__")
    }

    public var description: String { name + "=" + value }
}
