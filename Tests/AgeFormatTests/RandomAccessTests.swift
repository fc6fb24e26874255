import AgeFormat
import Foundation
import TestSupport
import Testing

/// Reading plaintext ranges out of an age file from only the payload chunks
/// that cover them (`AgeRangeDecryptor`), for files we write and files the
/// real `age` writes: every range reads back exactly, and any damage, a wrong
/// identity, a wrong file size or a short fetch fails instead of returning
/// other bytes.
@Suite("AgeFormat: random access to files we write")
struct RandomAccessTests {
    static let sizes = [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 1_048_576 + 4_321]
    static let multiChunk = [65_537, 3 * 65_536]

    @Test("every range reads back as the plaintext's slice", arguments: sizes)
    func ranges(size: Int) throws {
        try RangeSample.ours(size).expectEveryRangeReads()
    }

    /// The writer records `payloadOffset`; the reader must find the payload
    /// at the same place, and the file's size must add up around it.
    @Test("the encryptor's payloadOffset is where the reader finds the payload", arguments: [1, 3])
    func payloadOffsetAgrees(recipients: Int) throws {
        let identities = try (0..<recipients).map { _ in try AgeIdentity.generate() }
        let encryptor = try AgeEncryptor(recipients: identities.map(\.recipient))
        let offset = encryptor.payloadOffset
        let file = try encryptor.update(pattern(70_000)) + encryptor.finish()
        #expect(offset == 22 + 98 * recipients + 48 + 16)
        #expect(file.count == offset + 70_000 + 2 * 16)
        #expect(try AgeRangeDecryptor.payloadOffset(inPrefix: file) == offset)
        #expect(try AgeRangeDecryptor.payloadOffset(inPrefix: Array(file.prefix(offset - 16))) == offset)
        for identity in identities {
            let reader = try AgeRangeDecryptor(prefix: Array(file.prefix(offset)), identities: [identity])
            #expect(reader.payloadOffset == offset)
        }
    }

    @Test("a flipped byte in any fetched chunk, or in the payload nonce, fails the read", arguments: multiChunk)
    func tampering(size: Int) throws {
        try RangeSample.ours(size).expectTamperingFails()
    }

    @Test("a wrong file size fails the read, never returns other bytes", arguments: [0, 1] + multiChunk)
    func wrongFileSize(size: Int) throws {
        try RangeSample.ours(size).expectWrongFileSizeFails()
    }

    @Test("a wrong identity, a damaged header or a short prefix is refused")
    func headerRefusals() throws {
        try RangeSample.ours(100).expectHeaderRefusals()
    }

    @Test("a short or long fetch, and a range past the end, are refused with their own kinds", arguments: [0] + multiChunk)
    func fetchAndRangeErrors(size: Int) throws {
        try RangeSample.ours(size).expectFetchAndRangeErrors()
    }

    /// The reader holds only the payload key, and shows none of it.
    @Test("the reader prints no key material")
    func description() throws {
        let sample = try RangeSample.ours(10)
        let reader = try sample.reader()
        #expect(String(describing: reader) == "AgeRangeDecryptor(payloadOffset: \(reader.payloadOffset))")
    }
}

@Suite(
    "AgeFormat: random access to files the age command writes",
    .enabled(if: AgeCommand.available, "the age command is not installed (apt-get install age)"))
struct RandomAccessAgeCommandTests {
    @Test("every range reads back as the plaintext's slice", arguments: RandomAccessTests.sizes)
    func ranges(size: Int) throws {
        let sample = try RangeSample.byAge(size)
        // age's header is found without a recorded length, and the sizes add up.
        let chunks = max(1, (size + 65_535) / 65_536)
        #expect(try AgeRangeDecryptor.payloadOffset(inPrefix: Array(sample.file.prefix(4_096))) == sample.file.count - size - 16 * chunks)
        try sample.expectEveryRangeReads()
    }

    @Test("a flipped byte in any fetched chunk, or in the payload nonce, fails the read", arguments: RandomAccessTests.multiChunk)
    func tampering(size: Int) throws {
        try RangeSample.byAge(size).expectTamperingFails()
    }

    @Test("a wrong file size fails the read, never returns other bytes", arguments: [0, 1] + RandomAccessTests.multiChunk)
    func wrongFileSize(size: Int) throws {
        try RangeSample.byAge(size).expectWrongFileSizeFails()
    }

    @Test("a wrong identity, a damaged header or a short prefix is refused")
    func headerRefusals() throws {
        try RangeSample.byAge(100).expectHeaderRefusals()
    }
}

/// One age file, what it holds, and the identity that opens it; the checks
/// fetch from it as a ranged GET of a stored object would.
struct RangeSample {
    let plaintext: [UInt8]
    let file: [UInt8]
    let identity: AgeIdentity

    static let sealedChunk = 65_536 + 16

    static func ours(_ size: Int) throws -> RangeSample {
        let identity = try AgeIdentity.generate()
        let plaintext = pattern(size, seed: UInt64(size) + 1)
        return RangeSample(plaintext: plaintext, file: try Age.encrypt(plaintext, to: [identity.recipient]), identity: identity)
    }

    static func byAge(_ size: Int) throws -> RangeSample {
        let folder = try TestScratch.Folder("age-range")
        defer { folder.remove() }
        let identity = try AgeIdentity.generate()
        let plaintext = pattern(size, seed: UInt64(size) + 2)
        try Data(plaintext).write(to: URL(fileURLWithPath: folder["data"]))
        try Shell.run([AgeCommand.age, "-r", identity.recipient.description, "-o", folder["data.age"], folder["data"]])
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder["data.age"])))
        return RangeSample(plaintext: plaintext, file: file, identity: identity)
    }

    /// A reader made from the first 4 KiB, as one that did not record the
    /// header's length would fetch.
    func reader() throws -> AgeRangeDecryptor {
        try AgeRangeDecryptor(prefix: Array(file.prefix(4_096)), identities: [identity])
    }

    /// The file bytes in `range`, cut at the end of the file as a ranged GET is.
    func fetch(_ range: Range<Int>) -> [UInt8] {
        Array(file[min(range.lowerBound, file.count)..<min(range.upperBound, file.count)])
    }

    func read(_ reader: AgeRangeDecryptor, _ range: Range<Int>, fileSize: Int? = nil) throws -> [UInt8] {
        let size = fileSize ?? file.count
        let bytes = try reader.ciphertextRange(plaintext: range, fileSize: size)
        return try reader.decrypt(plaintext: range, ciphertext: fetch(bytes), fileSize: size)
    }

    /// Ranges at and across every chunk boundary, at both ends, and random
    /// ones (seeded, so a failure repeats).
    func ranges() -> [Range<Int>] {
        let size = plaintext.count
        var ranges: [Range<Int>] = [0..<0, 0..<size, size..<size]
        for boundary in stride(from: 65_536, through: size, by: 65_536) {
            for (from, to) in [(-1, 1), (0, 0), (-1, 0), (0, 1), (-70_000, 70_000), (-65_536, 0), (0, 65_536)] {
                let range = max(0, boundary + from)..<min(size, boundary + to)
                if !range.isEmpty || from == to { ranges.append(range) }
            }
        }
        if size > 0 {
            ranges += [(size - 1)..<size, max(0, size - 100_000)..<size]
            var state: UInt64 = UInt64(size) | 1
            func next(_ bound: Int) -> Int {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int((state >> 33) % UInt64(bound))
            }
            for _ in 0..<60 {
                let start = next(size)
                ranges.append(start..<min(size, start + next(200_000)))
            }
        }
        return ranges
    }

    func expectEveryRangeReads() throws {
        let reader = try reader()
        #expect(reader.payloadOffset == (try AgeRangeDecryptor(prefix: Array(file.prefix(reader.payloadOffset)), identities: [identity])).payloadOffset)
        #expect(try reader.plaintextSize(fileSize: file.count) == plaintext.count)
        for range in ranges() {
            let bytes = try reader.ciphertextRange(plaintext: range, fileSize: file.count)
            // Whole chunks from a chunk boundary, ending at most at the end of
            // the file, and no more of them than the range touches.
            #expect((bytes.lowerBound - reader.payloadOffset) % Self.sealedChunk == 0, "\(range) → \(bytes)")
            #expect(bytes.upperBound <= file.count && !bytes.isEmpty, "\(range) → \(bytes)")
            #expect(bytes.count <= (range.count / 65_536 + 2) * Self.sealedChunk, "\(range) → \(bytes)")
            let read = try reader.decrypt(plaintext: range, ciphertext: Array(file[bytes]), fileSize: file.count)
            #expect(read == Array(plaintext[range]), "range \(range) of \(plaintext.count) bytes")
        }
    }

    func expectTamperingFails() throws {
        let reader = try reader()
        // From the middle of the first chunk to the end: every chunk is fetched.
        let range = 1_000..<plaintext.count
        let bytes = try reader.ciphertextRange(plaintext: range, fileSize: file.count)
        let fetched = fetch(bytes)
        var positions: [Int] = []
        for start in stride(from: 0, to: fetched.count, by: Self.sealedChunk) {
            let end = min(start + Self.sealedChunk, fetched.count)
            positions += [start, (start + end) / 2, end - 16, end - 1]
        }
        for position in positions {
            var tampered = fetched
            tampered[position] ^= 0x04
            let error = #expect(throws: AgeError.self) { _ = try reader.decrypt(plaintext: range, ciphertext: tampered, fileSize: file.count) }
            #expect(error?.kind == .corruptPayload, "byte \(position) of \(fetched.count): \(String(describing: error))")
        }
        // The chunks rotated by one: each is authentic, but not in its place.
        let rotated = Array(fetched[Self.sealedChunk...] + fetched[..<Self.sealedChunk])
        let error = #expect(throws: AgeError.self) { _ = try reader.decrypt(plaintext: range, ciphertext: rotated, fileSize: file.count) }
        #expect(error?.kind == .corruptPayload)
        // The payload nonce is outside the MAC but keys the payload.
        var prefix = Array(file.prefix(reader.payloadOffset))
        prefix[prefix.count - 3] ^= 0x01
        let misled = try AgeRangeDecryptor(prefix: prefix, identities: [identity])
        let wrongKey = #expect(throws: AgeError.self) { _ = try misled.decrypt(plaintext: range, ciphertext: fetched, fileSize: file.count) }
        #expect(wrongKey?.kind == .corruptPayload)
    }

    /// A wrong size changes which chunk is last and how long it is. A read
    /// of chunks that are non-last under both sizes is still right; any
    /// other must fail. So every read either fails or returns the true
    /// bytes, and every read at the end of the file fails. The two sizes
    /// that keep every chunk in place (one chunk more, fewer) must fail at
    /// the last-chunk flag.
    func expectWrongFileSizeFails() throws {
        let reader = try reader()
        let size = plaintext.count
        let atEnd = [(size / 2)..<size, max(0, size - 1)..<size, size..<size]
        for wrong in [file.count - 1, file.count + 1, file.count - Self.sealedChunk, file.count + Self.sealedChunk, file.count - 16, 0] {
            for range in [0..<0, 0..<min(size, 10)] + atEnd {
                do {
                    let read = try read(reader, range, fileSize: wrong)
                    #expect(read == Array(plaintext[range]), "file size \(wrong) instead of \(file.count), range \(range): other bytes")
                    #expect(!atEnd.contains(range), "file size \(wrong) instead of \(file.count), range \(range) at the end: no error")
                } catch is AgeError {
                    continue
                }
            }
        }
        if size % 65_536 == 0, size > 0 {
            // The real last chunk, read as not the last: the extension a wrong size claims.
            let error = #expect(throws: AgeError.self) { _ = try read(reader, (size - 1)..<size, fileSize: file.count + Self.sealedChunk) }
            #expect(error?.kind == .corruptPayload)
            #expect(error?.detail.contains("as the non-last chunk") == true, "\(String(describing: error))")
        }
        if size > 65_536 {
            // A middle chunk read as the last: the truncation a wrong size claims.
            let error = #expect(throws: AgeError.self) { _ = try read(reader, 0..<1, fileSize: file.count - (size % 65_536 == 0 ? 2 : 1) * Self.sealedChunk) }
            #expect(error?.kind == .corruptPayload)
            #expect(error?.detail.contains("as the last chunk") == true, "\(String(describing: error))")
        }
    }

    func expectHeaderRefusals() throws {
        let offset = try #require(try AgeRangeDecryptor.payloadOffset(inPrefix: file))
        let wrong = #expect(throws: AgeError.self) { _ = try AgeRangeDecryptor(prefix: file, identities: [try AgeIdentity.generate()]) }
        #expect(wrong?.kind == .noMatchingIdentity)
        let none = #expect(throws: AgeError.self) { _ = try AgeRangeDecryptor(prefix: file, identities: []) }
        #expect(none?.kind == .missingKey)
        // A byte of the stanza's share, and one of the MAC itself.
        for (position, kinds) in [(30, [AgeError.Kind.noMatchingIdentity, .malformedHeader]), (offset - 16 - 10, [.headerMACMismatch, .malformedHeader])] {
            var damaged = file
            damaged[position] ^= 0x01
            let error = #expect(throws: AgeError.self) { _ = try AgeRangeDecryptor(prefix: damaged, identities: [identity]) }
            #expect(kinds.contains(error?.kind ?? .unusable), "byte \(position): \(String(describing: error))")
        }
        for cut in [0, 50, offset - 17, offset - 1] {
            let error = #expect(throws: AgeError.self) { _ = try AgeRangeDecryptor(prefix: Array(file.prefix(cut)), identities: [identity]) }
            #expect(error?.kind == .truncated, "prefix of \(cut): \(String(describing: error))")
        }
        #expect(try AgeRangeDecryptor.payloadOffset(inPrefix: Array(file.prefix(50))) == nil)
        let notAge = #expect(throws: AgeError.self) { _ = try AgeRangeDecryptor.payloadOffset(inPrefix: Array("PGDMP\n".utf8)) }
        #expect(notAge?.kind == .malformedHeader)
    }

    func expectFetchAndRangeErrors() throws {
        let reader = try reader()
        let size = plaintext.count
        let range = (size / 3)..<size
        let fetched = fetch(try reader.ciphertextRange(plaintext: range, fileSize: file.count))
        for short in [fetched.dropLast(1), fetched.dropLast(17), fetched.prefix(0)] {
            let error = #expect(throws: AgeError.self) { _ = try reader.decrypt(plaintext: range, ciphertext: Array(short), fileSize: file.count) }
            #expect(error?.kind == .truncated, "\(short.count) of \(fetched.count) bytes: \(String(describing: error))")
        }
        let long = #expect(throws: AgeError.self) { _ = try reader.decrypt(plaintext: range, ciphertext: fetched + [0], fileSize: file.count) }
        #expect(long?.kind == .invalidRange)
        for outside in [0..<(size + 1), (size + 1)..<(size + 1), -1..<0] {
            let error = #expect(throws: AgeError.self) { _ = try reader.ciphertextRange(plaintext: outside, fileSize: file.count) }
            #expect(error?.kind == .invalidRange, "\(outside): \(String(describing: error))")
        }
        let tooSmall = #expect(throws: AgeError.self) { _ = try reader.plaintextSize(fileSize: reader.payloadOffset + 15) }
        #expect(tooSmall?.kind == .truncated)
        // Absurd sizes are refused or computed, never overflow.
        #expect(throws: AgeError.self) { _ = try reader.plaintextSize(fileSize: Int.min) }
        #expect(try reader.plaintextSize(fileSize: Int.max) > Int.max - Int.max / 4_000)
    }
}
