/// AWS's shared configuration files (`~/.aws/credentials`, `~/.aws/config`):
/// INI sections of `key = value` lines. In the credentials file a profile's
/// section is `[name]`; in the config file it is `[profile name]`, except
/// `[default]`. Comments start with `#` or `;`. An indented line continues a
/// nested setting (`s3 =` then `  addressing_style = path`): it is read as
/// `s3.addressing_style`.
public struct AWSSharedFile: Sendable {
    public let path: String
    /// Section name (as written between the brackets) to its settings.
    public let sections: [String: [String: String]]

    public init(path: String, text: String) {
        self.path = path
        var sections: [String: [String: String]] = [:]
        var current: String?
        var parent: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                parent = nil
                sections[current!, default: [:]] = sections[current!] ?? [:]
                continue
            }
            guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            let indented = raw.first == " " || raw.first == "\t"
            if indented, let parent {
                sections[section]![parent + "." + key] = value
            } else if value.isEmpty {
                parent = key
            } else {
                parent = nil
                sections[section]![key] = value
            }
        }
        self.sections = sections
    }

    /// The settings of profile `name`: `[name]` in a credentials file,
    /// `[profile name]` (or `[default]`) in a config file.
    public func profile(_ name: String, configStyle: Bool) -> [String: String]? {
        if configStyle, name != "default" { return sections["profile \(name)"] }
        return sections[name]
    }
}
