import AgeFormat
import Foundation
import TestSupport
import Testing

/// The real `age` and `age-keygen` (Debian's package `age`): what we write,
/// they read, and what they write, we read, byte for byte.
@Suite(
    "AgeFormat: interop with the age command",
    .enabled(if: AgeCommand.available, "the age command is not installed (apt-get install age)"))
struct AgeCommandInteropTests {
    static let sizes = [0, 1, 65_536, 3 * 65_536 + 5]

    @Test("age-keygen's identity file reads; age decrypts what we encrypt", arguments: sizes)
    func ageDecryptsOurs(size: Int) throws {
        let folder = try TestScratch.Folder("age-theirs-key")
        defer { folder.remove() }
        try Shell.run([AgeCommand.keygen, "-o", folder["key.txt"]])
        let identities = try AgeIdentityFile.parse(try String(contentsOfFile: folder["key.txt"], encoding: .utf8), source: folder["key.txt"])
        let publicKey = try Shell.run([AgeCommand.keygen, "-y", folder["key.txt"]]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(identities.map(\.recipient.description) == [publicKey])

        let plaintext = pattern(size)
        var file: [UInt8] = []
        try Age.encrypt(pieces(plaintext, of: 10_000), to: [try AgeRecipient(parsing: publicKey)]) { file += $0 }
        try Data(file).write(to: URL(fileURLWithPath: folder["data.age"]))
        try Shell.run([AgeCommand.age, "--decrypt", "-i", folder["key.txt"], "-o", folder["data"], folder["data.age"]])
        #expect(try AgeCommand.output(folder["data"]) == plaintext)
    }

    @Test("we decrypt what age encrypts to our generated identity", arguments: sizes)
    func weDecryptTheirs(size: Int) throws {
        let folder = try TestScratch.Folder("age-ours-key")
        defer { folder.remove() }
        let identity = try AgeIdentity.generate()
        try AgeIdentityFile.render(identity).write(toFile: folder["key.txt"], atomically: true, encoding: .utf8)
        // age-keygen reads our identity file and finds the same public key.
        #expect(try Shell.run([AgeCommand.keygen, "-y", folder["key.txt"]]) == "\(identity.recipient)\n")

        let plaintext = pattern(size, seed: 11)
        try Data(plaintext).write(to: URL(fileURLWithPath: folder["data"]))
        try Shell.run([AgeCommand.age, "-r", identity.recipient.description, "-o", folder["data.age"], folder["data"]])
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder["data.age"])))
        var back: [UInt8] = []
        try Age.decrypt(pieces(file, of: 4_096), with: [identity]) { back += $0 }
        #expect(back == plaintext)
        // And age itself reads our identity file.
        try Shell.run([AgeCommand.age, "-d", "-i", folder["key.txt"], "-o", folder["again"], folder["data.age"]])
        #expect(try AgeCommand.output(folder["again"]) == plaintext)
    }

    @Test("several recipients both ways: each identity decrypts the other side's file")
    func multipleRecipients() throws {
        let folder = try TestScratch.Folder("age-multi")
        defer { folder.remove() }
        let ours = try AgeIdentity.generate()
        try Shell.run([AgeCommand.keygen, "-o", folder["theirs.txt"]])
        let theirs = try AgeIdentityFile.parse(try String(contentsOfFile: folder["theirs.txt"], encoding: .utf8), source: "theirs.txt")[0]
        let plaintext = pattern(100_000, seed: 3)

        // age to both; we decrypt with ours.
        try Data(plaintext).write(to: URL(fileURLWithPath: folder["data"]))
        try Shell.run([
            AgeCommand.age, "-r", theirs.recipient.description, "-r", ours.recipient.description, "-o", folder["by-age.age"], folder["data"],
        ])
        let byAge = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder["by-age.age"])))
        #expect(try Age.decrypt(byAge, with: [ours]) == plaintext)

        // We to both; age decrypts with theirs.
        try Data(try Age.encrypt(plaintext, to: [ours.recipient, theirs.recipient])).write(to: URL(fileURLWithPath: folder["by-us.age"]))
        try Shell.run([AgeCommand.age, "-d", "-i", folder["theirs.txt"], "-o", folder["back"], folder["by-us.age"]])
        #expect(try AgeCommand.output(folder["back"]) == plaintext)
    }

    /// age agrees with us about damage: a flipped payload byte or a cut file
    /// of ours is refused by age too, and age's wrong-identity file by us.
    @Test("age refuses our tampered files; we refuse a file age wrote for someone else")
    func refusalsAgree() throws {
        let folder = try TestScratch.Folder("age-refuse")
        defer { folder.remove() }
        try Shell.run([AgeCommand.keygen, "-o", folder["key.txt"]])
        let theirs = try AgeIdentityFile.parse(try String(contentsOfFile: folder["key.txt"], encoding: .utf8), source: "key.txt")[0]
        let file = try Age.encrypt(pattern(70_000), to: [theirs.recipient])
        var flipped = file
        flipped[file.count - 100] ^= 1
        for (name, bytes) in [("flipped", flipped), ("cut", Array(file.prefix(184 + 65_552)))] {
            try Data(bytes).write(to: URL(fileURLWithPath: folder[name]))
            let result = try Shell.capture([AgeCommand.age, "-d", "-i", folder["key.txt"], "-o", folder[name + ".out"], folder[name]])
            #expect(result.status != 0, "age accepted the \(name) file")
        }

        try Data(pattern(10)).write(to: URL(fileURLWithPath: folder["data"]))
        try Shell.run([AgeCommand.age, "-r", theirs.recipient.description, "-o", folder["data.age"], folder["data"]])
        let byAge = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder["data.age"])))
        let error = #expect(throws: AgeError.self) { _ = try Age.decrypt(byAge, with: [try AgeIdentity.generate()]) }
        #expect(error?.kind == .noMatchingIdentity)
    }
}

/// The commands' full paths (the test harness spawns without a PATH search).
enum AgeCommand {
    static let age = find("age")
    static let keygen = find("age-keygen")
    static let available = FileManager.default.isExecutableFile(atPath: age) && FileManager.default.isExecutableFile(atPath: keygen)

    /// What age wrote with `-o path`. age creates that file at its first
    /// write, so an empty plaintext leaves none.
    static func output(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private static func find(_ name: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let folders = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return folders.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? name
    }
}
