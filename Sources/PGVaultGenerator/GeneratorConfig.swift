/// How much data to generate, and from which seed. Everything but `users`,
/// `messages` and `seed` is derived from those two by ``init(seed:users:messages:)``
/// and may be adjusted afterwards.
public struct GeneratorConfig: Sendable, Equatable {
    public var seed: UInt64
    public var users: Int
    public var messages: Int
    public var servers: Int
    /// Channels per server, categories and voice channels included.
    public var channelsPerServer: ClosedRange<Int>
    /// Roles per server, @everyone included.
    public var rolesPerServer: ClosedRange<Int>
    /// Average servers a user belongs to (the heaviest users belong to many more).
    public var membershipsPerUser: Double
    /// One-to-one DM channels (type 1, no server) and group DMs (type 3).
    public var dmChannels: Int
    public var groupDMs: Int
    /// Approximate totals: each message draws its own count.
    public var reactions: Int
    public var attachments: Int
    /// Exact totals.
    public var invites: Int
    public var auditLogs: Int
    /// Messages per generation chunk. Replies point to earlier messages of the
    /// same chunk, so changing this changes the data (changing `workers` does not).
    public var chunkSize: Int
    /// Connections loading messages. 1 (the default) loads them in one stream
    /// and checks their foreign keys once at the end; more connections check
    /// every row as it arrives, which costs more than it gains on a small server.
    public var workers: Int
    /// Run ANALYZE on the loaded tables at the end (about a minute at the
    /// default scale; otherwise autovacuum gets to it eventually).
    public var analyze: Bool
    /// 0: messages keeps the migrations' monthly partitions. N > 0: they are
    /// replaced by N daily partitions from 2024-01-01 (``DailyPartitions``),
    /// and the messages are spread over those N days.
    public var dailyPartitions: Int

    public init(seed: UInt64 = 1, users: Int, messages: Int) {
        self.seed = seed
        self.users = users
        self.messages = messages
        servers = max(4, users / 20)
        channelsPerServer = users < 1000 ? 3...8 : 3...12
        rolesPerServer = 2...8
        membershipsPerUser = 4
        dmChannels = max(2, users / 4)
        groupDMs = max(1, users / 100)
        reactions = messages / 2
        attachments = messages / 20
        invites = max(20, users / 10)
        auditLogs = max(300, messages / 50)
        chunkSize = 65_536
        workers = 1
        analyze = false
        dailyPartitions = 0
    }

    /// Where the messages' partitioned range ends: 2027-01-01 (the migrations'
    /// last monthly partition), or the end of the last daily partition.
    var messagesRangeEnd: Int64 {
        dailyPartitions > 0 ? Synth.Timeline.rangeStart + Int64(dailyPartitions) * Synth.Timeline.day : Synth.Timeline.rangeEnd
    }

    /// The preset scales.
    public static let scaleNames = ["tiny", "small", "default", "large"]

    /// `tiny`: 200 users, 5k messages (tests; loads in about a second).
    /// `small`: 5k users, 100k messages (demos).
    /// `default`: 100k users, 3M messages (about 2.2 GB, indexes included).
    /// `large`: the default scale times 10/3, 333k users and 10M messages
    /// (about 7.5 GB; issue 22's growth and cold-cache figures).
    public static func scale(_ name: String, seed: UInt64 = 1) throws -> GeneratorConfig {
        switch name {
        case "tiny": return GeneratorConfig(seed: seed, users: 200, messages: 5_000)
        case "small": return GeneratorConfig(seed: seed, users: 5_000, messages: 100_000)
        case "default": return GeneratorConfig(seed: seed, users: 100_000, messages: 3_000_000)
        case "large": return GeneratorConfig(seed: seed, users: 333_333, messages: 10_000_000)
        default:
            throw GeneratorError("unknown scale '\(name)'; choose one of \(scaleNames.joined(separator: ", "))")
        }
    }

    /// The preset shapes: a layout of the same schema that stresses something
    /// other than volume.
    public static let shapeNames = ["many-partitions"]

    /// `many-partitions`: the small scale's sizes (about 200k rows in all),
    /// with messages in `partitions` daily partitions instead of monthly ones,
    /// as deployments that keep years of daily partitions have: the per-table
    /// costs of a backup and a restore dominate.
    public static func shape(_ name: String, partitions: Int, seed: UInt64 = 1) throws -> GeneratorConfig {
        guard name == "many-partitions" else {
            throw GeneratorError("unknown shape '\(name)'; choose one of \(shapeNames.joined(separator: ", "))")
        }
        var config = try scale("small", seed: seed)
        config.dailyPartitions = partitions
        return config
    }

    /// Refuses sizes the generator cannot honour (every monthly partition needs a
    /// few hundred messages).
    public func validate() throws {
        if users < 10 { throw GeneratorError("--users must be at least 10 (got \(users))") }
        if messages < 200 { throw GeneratorError("--messages must be at least 200 so every partition gets rows (got \(messages))") }
        if users > 50_000_000 || messages > 2_000_000_000 { throw GeneratorError("scale too large") }
        if servers < 1 || channelsPerServer.lowerBound < 3 || rolesPerServer.lowerBound < 1 {
            throw GeneratorError("need at least 1 server, 3 channels and 1 role per server")
        }
        if auditLogs < 100 { throw GeneratorError("auditLogs must be at least 100 so every partition gets rows") }
        if dmChannels < 1 || groupDMs < 0 || invites < 0 || reactions < 0 || attachments < 0 {
            throw GeneratorError("counts must not be negative")
        }
        if chunkSize < 1 || workers < 1 { throw GeneratorError("chunkSize and workers must be positive") }
        if dailyPartitions < 0 || dailyPartitions > DailyPartitions.maximum {
            throw GeneratorError("--partitions must be between 1 and \(DailyPartitions.maximum) (got \(dailyPartitions))")
        }
        if dailyPartitions > 0 && messages < 4 * dailyPartitions {
            throw GeneratorError("--messages must be at least 4 per daily partition so every partition gets rows (\(messages) for \(dailyPartitions) partitions; give at least \(4 * dailyPartitions))")
        }
    }
}

public struct GeneratorError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What a run loaded.
public struct GeneratorSummary: Codable, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public var table: String
        public var rows: Int64
    }

    public var seed: UInt64
    public var users: Int
    public var messages: Int
    /// Row counts in load order.
    public var tables: [Table]
    /// The user with the most messages (user index 0 by construction): messages
    /// in many channels and partitions, reactions, attachments, invites and
    /// audit log entries.
    public var heaviestUserID: Int64
    public var heaviestUserMessages: Int64
    public var seconds: Double

    /// Rows loaded into `table`, 0 if it is not in the summary.
    public func rows(_ table: String) -> Int64 {
        tables.first { $0.table == table }?.rows ?? 0
    }

    public var totalRows: Int64 { tables.reduce(0) { $0 + $1.rows } }
}
