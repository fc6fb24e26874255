// Row sources of messages and the tables that reference them.

extension Synth {
    /// The parts of message `index` other tables need: a pure function of the seed
    /// and the index, so reactions and attachments recompute their message instead
    /// of remembering 3M of them, and any split of the work gives the same data.
    struct MessageCore {
        let index: Int
        let id: Int64
        let time: Int64
        let channel: Int
        let author: Int
        /// -1 for DMs.
        let server: Int
    }

    struct MessagePlan: Sendable {
        let world: World
        let layout: TimeLayout
        let reactionShare: Double
        let attachmentShare: Double

        /// Mean counts on the messages that have reactions / attachments.
        static let reactionsWhenAny = 2.5
        static let attachmentsWhenAny = 1.4

        init(world: World) {
            self.world = world
            let config = world.config
            layout = TimeLayout(count: config.messages, rangeEnd: config.messagesRangeEnd)
            let messages = Double(max(1, config.messages))
            reactionShare = min(0.95, Double(config.reactions) / messages / Self.reactionsWhenAny)
            attachmentShare = min(0.95, Double(config.attachments) / messages / Self.attachmentsWhenAny)
        }

        /// Message `i`: its time (increasing with i), then a Zipf-skewed author among
        /// the users existing by then (user 0 the busiest), then one of the author's
        /// DMs or servers (popular ones likelier) and a channel of it (#general
        /// likeliest).
        func core(_ i: Int) -> MessageCore {
            var r = Rng(seed: world.config.seed, .messageCore, i)
            let time = layout.time(i, jitter: r.unit())
            let author = r.skewed(world.usersExisting(at: time))
            let dms = world.userDMs.count(author)
            var server = -1
            let channel: Int
            if dms > 0 && r.chance(0.12) {
                channel = world.userDMs.item(author, r.int(dms))
            } else {
                // The author's servers created by then (a prefix: servers are created in index order).
                let limit = Int32(world.serversExisting(at: time))
                let range = world.userServers.range(author)
                var lo = range.lowerBound, hi = range.upperBound
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if world.userServers.items[mid] < limit { lo = mid + 1 } else { hi = mid }
                }
                let existing = lo - range.lowerBound
                server = world.userServers.item(author, r.zipf(existing > 0 ? existing : range.count))
                let channels = world.serverMessageChannels
                channel = channels.item(server, r.zipf(channels.count(server)))
            }
            let id = Timeline.snowflake(time, tag: Tag.messages, sequence: Int64(i))
            return MessageCore(index: i, id: id, time: time, channel: channel, author: author, server: server)
        }

        func attachments(_ i: Int) -> (count: Int, rng: Rng) {
            var r = Rng(seed: world.config.seed, .attachments, i)
            guard r.chance(attachmentShare) else { return (0, r) }
            return (1 + r.geometric(mean: Self.attachmentsWhenAny - 1, cap: 9), r)
        }

        func reactions(_ i: Int) -> (count: Int, rng: Rng) {
            var r = Rng(seed: world.config.seed, .reactions, i)
            guard r.chance(reactionShare) else { return (0, r) }
            return (1 + r.geometric(mean: Self.reactionsWhenAny - 1, cap: 15), r)
        }

        /// A user who can see the message's channel: a DM participant, or a member
        /// of its server (busy users likelier).
        func audience(_ core: MessageCore, _ r: inout Rng) -> Int {
            if core.server < 0 {
                let dm = core.channel - world.firstDM
                return world.dmParticipants.item(dm, r.int(world.dmParticipants.count(dm)))
            }
            return world.serverMembers.item(core.server, r.zipf(world.serverMembers.count(core.server)))
        }

        /// Chunks of `chunkSize` messages; worker w of n takes chunks w, w+n, ...
        func chunks(worker: Int, of workers: Int) -> [Range<Int>] {
            let size = world.config.chunkSize
            let count = (layout.count + size - 1) / size
            return stride(from: worker, to: count, by: workers).map { k in
                (k * size)..<min((k + 1) * size, layout.count)
            }
        }
    }

    /// Walks message indices chunk by chunk.
    struct ChunkCursor {
        private let chunks: [Range<Int>]
        private var chunk = 0
        private var index: Int

        init(_ chunks: [Range<Int>]) {
            self.chunks = chunks
            index = chunks.first?.lowerBound ?? 0
        }

        /// The next index, and whether it starts a chunk; nil when done.
        mutating func next() -> (index: Int, newChunk: Bool)? {
            while chunk < chunks.count && index >= chunks[chunk].upperBound {
                chunk += 1
                if chunk < chunks.count { index = chunks[chunk].lowerBound }
            }
            guard chunk < chunks.count else { return nil }
            let i = index
            index += 1
            return (i, i == chunks[chunk].lowerBound)
        }
    }

    struct MessageRows: RowSource {
        let table = "messages"
        let columns = [
            "id", "channel_id", "author_id", "content", "type", "flags", "reference_message_id", "reference_channel_id",
            "reference_server_id", "embeds", "mentions", "mention_roles", "mention_everyone", "edited_at", "created_at",
            "deleted_at",
        ]
        let plan: MessagePlan
        private var cursor: ChunkCursor
        /// The latest message of each channel in the current chunk (reply targets).
        private var latest: [Int32: Int64] = [:]
        /// Messages per author (index), for the summary.
        private(set) var authorCounts: [Int32]
        private var text: [UInt8] = []
        private var json = JSONText()

        init(plan: MessagePlan, chunks: [Range<Int>]) {
            self.plan = plan
            cursor = ChunkCursor(chunks)
            authorCounts = [Int32](repeating: 0, count: plan.world.users)
        }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard let (i, newChunk) = cursor.next() else { return false }
            if newChunk { latest.removeAll(keepingCapacity: true) }
            let world = plan.world
            let core = plan.core(i)
            var r = Rng(seed: world.config.seed, .messageBody, i)
            let isDM = core.server < 0
            let channelKey = Int32(core.channel)
            let hasAttachments = plan.attachments(i).count > 0

            var type = 0
            var replyTo: Int64?
            if r.chance(0.12), let previous = latest[channelKey] {
                type = 19
                replyTo = previous
            } else {
                let roll = r.unit()
                if !isDM && roll < 0.01 { type = 7 }
                else if roll < 0.015 { type = 6 }
                else if !isDM && roll < 0.018 { type = 8 }
                else if roll < 0.025 { type = 20 }
            }

            var mentions: [Int64] = []
            var mentionRoles: [Int64] = []
            var everyone = false
            if r.chance(0.08) {
                for _ in 0..<r.int(1...3) {
                    let user = world.userIDs[plan.audience(core, &r)]
                    if !mentions.contains(user) { mentions.append(user) }
                }
            }
            if !isDM && r.chance(0.02) {
                let roles = world.serverRoles.count(core.server)
                for _ in 0..<r.int(1...2) {
                    let role = world.roleIDs[world.serverRoles.item(core.server, r.int(roles))]
                    if !mentionRoles.contains(role) { mentionRoles.append(role) }
                }
            }
            if !isDM && r.chance(0.005) { everyone = true }

            // Content: NULL for system messages and some attachment-only ones,
            // sometimes empty, sometimes exactly the two characters \N, sometimes
            // every hostile fragment at once.
            var content: [UInt8]?
            if type == 7 || type == 8 {
                content = nil
                mentions = []
                mentionRoles = []
                everyone = false
            } else if i % 97 == 0 {
                content = Corpus.kitchenSink.bytes
            } else if i % 211 == 5 {
                content = [0x5C, 0x4E]
            } else if (hasAttachments && r.chance(0.5)) || r.chance(0.015) {
                content = nil
                mentions = []
                mentionRoles = []
                everyone = false
            } else if r.chance(0.005) {
                content = []
            } else {
                text.removeAll(keepingCapacity: true)
                for user in mentions {
                    text.appendStatic("<@")
                    text.appendDecimalText(user)
                    text.appendStatic("> ")
                }
                for role in mentionRoles {
                    text.appendStatic("<@&")
                    text.appendDecimalText(role)
                    text.appendStatic("> ")
                }
                if everyone { text.appendStatic("@everyone ") }
                let long = r.chance(0.01)
                let words = long ? r.int(150...600) : 1 + r.geometric(mean: 11, cap: 80)
                let hostile = r.chance(0.2) ? 0.08 : 0
                TextMaker.words(&r, into: &text, count: words, hostileRate: hostile, maxScalars: long ? 4000 : 2000, used: text.count)
                content = text
            }

            b.int(core.id)
            b.int(world.channelIDs[core.channel])
            b.int(world.userIDs[core.author])
            b.text(content)
            b.int(type)
            b.int(r.chance(0.01) ? 4 : (r.chance(0.003) ? 1 : 0))
            b.int(replyTo)
            b.int(replyTo != nil ? world.channelIDs[core.channel] : nil)
            b.int(replyTo != nil && !isDM ? world.serverIDs[core.server] : nil)
            if r.chance(0.03) {
                embeds(core, &r)
                b.text(json.bytes)
            } else {
                b.plain("[]")
            }
            b.intArray(mentions)
            b.intArray(mentionRoles)
            b.bool(everyone)
            b.timestamp(r.chance(0.06) ? core.time + Bits.delay(&r, maxDays: 30) : nil)
            b.timestamp(core.time)
            b.timestamp(r.chance(0.02) ? core.time + Bits.delay(&r, maxDays: 60) : nil)
            b.endRow()

            latest[channelKey] = core.id
            authorCounts[core.author] += 1
            return true
        }

        /// One or two embeds with nested objects, arrays, unicode, escapes.
        private mutating func embeds(_ core: MessageCore, _ r: inout Rng) {
            json.clear()
            json.raw("[")
            for k in 0..<(r.chance(0.8) ? 1 : 2) {
                if k > 0 { json.raw(",") }
                json.raw("{\"type\":")
                json.string(r.chance(0.7) ? "rich" : "link")
                json.raw(",\"title\":")
                json.string(TextMaker.phrase(&r, maxWords: 8, maxScalars: 256, hostileRate: 0.2))
                json.raw(",\"description\":")
                json.string(TextMaker.phrase(&r, maxWords: 40, maxScalars: 2048, hostileRate: 0.2))
                json.raw(",\"url\":\"https://example.com/watch?v=")
                Bits.random(&r, Bits.base62, count: 11, into: &json.bytes)
                json.raw("&t=42s&q=caf%C3%A9\",\"color\":")
                json.int(Int64(r.int(0...0xFF_FFFF)))
                json.raw(",\"author\":{\"name\":")
                json.string(TextMaker.phrase(&r, maxWords: 3, maxScalars: 64))
                json.raw(",\"icon_url\":")
                json.string(Bits.cdnURL(&r, kind: "embed-icons", id: core.id))
                json.raw("},\"fields\":[")
                for f in 0..<r.int(0...3) {
                    if f > 0 { json.raw(",") }
                    json.raw("{\"name\":")
                    json.string(TextMaker.phrase(&r, maxWords: 3, maxScalars: 256, hostileRate: 0.3))
                    json.raw(",\"value\":")
                    json.string(TextMaker.phrase(&r, maxWords: 12, maxScalars: 1024, hostileRate: 0.3))
                    json.raw(",\"inline\":")
                    json.bool(r.chance(0.5))
                    json.raw("}")
                }
                json.raw("],\"footer\":{\"text\":\"\\u00e9t\\u00e9 \\ud83c\\udf89 \\\"quoted\\\" back\\\\slash\\ttab\"}")
                if r.chance(0.5) {
                    json.raw(",\"thumbnail\":{\"url\":")
                    json.string(Bits.cdnURL(&r, kind: "thumbnails", id: core.id, ext: "jpg"))
                    json.raw(",\"width\":")
                    json.int(Int64(r.int(16...1920)))
                    json.raw(",\"height\":")
                    json.int(Int64(r.int(16...1080)))
                    json.raw(",\"ratio\":1.777,\"tags\":[\"a\",null,[],{}]}")
                }
                json.raw("}")
            }
            json.raw("]")
        }
    }

    struct ReactionRows: RowSource {
        let table = "message_reactions"
        let columns = [
            "id", "message_id", "message_created_at", "user_id", "emoji_id", "emoji_name", "emoji_animated", "created_at",
        ]
        let plan: MessagePlan
        private var cursor: ChunkCursor

        init(plan: MessagePlan, chunks: [Range<Int>]) {
            self.plan = plan
            cursor = ChunkCursor(chunks)
        }

        static func customEmojiID(_ e: Int) -> Int64 {
            Timeline.snowflake(Timeline.rangeStart + Int64(e) * Timeline.day, tag: Tag.customEmoji, sequence: Int64(e))
        }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard let (i, _) = cursor.next() else { return false }
            let (count, rng) = plan.reactions(i)
            guard count > 0 else { return true }
            var r = rng
            let core = plan.core(i)
            let world = plan.world
            // (message, user, emoji_id, emoji_name) is unique, NULL emoji_id included.
            var seen: [(Int, Int)] = []
            for k in 0..<count {
                let user = plan.audience(core, &r)
                let custom = r.chance(0.25)
                let emoji = custom ? r.int(Corpus.customEmoji.count) : r.zipf(Corpus.reactionEmoji.count)
                let key = (user, custom ? 1000 + emoji : emoji)
                if seen.contains(where: { $0 == key }) { continue }
                seen.append(key)
                b.int(Timeline.snowflake(core.time, tag: Int64(k), sequence: Int64(i)))
                b.int(core.id)
                b.timestamp(core.time)
                b.int(world.userIDs[user])
                if custom {
                    b.int(Self.customEmojiID(emoji))
                    b.text(Corpus.customEmoji[emoji].name.bytes)
                    b.bool(Corpus.customEmoji[emoji].animated)
                } else {
                    b.null()
                    b.text(Corpus.reactionEmoji[emoji].bytes)
                    b.bool(false)
                }
                b.timestamp(core.time + Bits.delay(&r, maxDays: 10))
                b.endRow()
            }
            return true
        }
    }

    struct AttachmentRows: RowSource {
        let table = "attachments"
        let columns = [
            "id", "message_id", "message_created_at", "filename", "content_type", "size", "url", "proxy_url", "width",
            "height", "duration_secs", "ephemeral", "created_at",
        ]
        let plan: MessagePlan
        private var cursor: ChunkCursor
        private var name: [UInt8] = []
        private var url: [UInt8] = []

        init(plan: MessagePlan, chunks: [Range<Int>]) {
            self.plan = plan
            cursor = ChunkCursor(chunks)
        }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard let (i, _) = cursor.next() else { return false }
            let (count, rng) = plan.attachments(i)
            guard count > 0 else { return true }
            var r = rng
            let core = plan.core(i)
            let channelID = plan.world.channelIDs[core.channel]
            for k in 0..<count {
                let id = Timeline.snowflake(core.time, tag: Int64(k), sequence: Int64(i))
                let file = r.pick(Corpus.fileTypes)
                name.removeAll(keepingCapacity: true)
                var used = 0
                if r.chance(0.01) {
                    // A long name, close to varchar(255).
                    used = TextMaker.words(&r, into: &name, count: 200, hostileRate: 0.1, maxScalars: 240)
                } else {
                    let stem = r.pick(Corpus.fileStems)
                    name += stem.bytes
                    used = stem.scalars
                    if r.chance(0.2) {
                        name.appendStatic(" (")
                        name.appendDecimalText(Int64(r.int(1...9)))
                        name.appendStatic(")")
                        used += 4
                    }
                }
                name.append(0x2E)
                name += file.ext.bytes
                assert(used + 1 + file.ext.scalars <= 255)
                b.int(id)
                b.int(core.id)
                b.timestamp(core.time)
                b.text(name)
                b.text(file.contentType?.bytes)
                let isImage = file.kind == .image, isVideo = file.kind == .video, isAudio = file.kind == .audio
                b.int(isImage ? r.int(1_000...8_000_000) : r.int(1...25_000_000))
                for host in ["https://cdn.example.com/attachments/", "https://media.example.net/attachments/"] {
                    if host.hasPrefix("https://media") && r.chance(0.2) {
                        b.null()
                        continue
                    }
                    url.removeAll(keepingCapacity: true)
                    url += Array(host.utf8)
                    url.appendDecimalText(channelID)
                    url.append(0x2F)
                    url.appendDecimalText(id)
                    url.append(0x2F)
                    Bits.percentEncoded(name, into: &url)
                    b.text(url)
                }
                b.int(isImage || isVideo ? r.int(16...4096) : nil)
                b.int(isImage || isVideo ? r.int(16...4096) : nil)
                if isAudio || isVideo {
                    let millis = r.int(500...3_600_000)
                    url.removeAll(keepingCapacity: true)
                    url.appendDecimalText(Int64(millis / 1000))
                    url.append(0x2E)
                    url.appendZeroPadded(millis % 1000, width: 3)
                    b.text(url)
                } else {
                    b.null()
                }
                b.bool(r.chance(0.01))
                b.timestamp(core.time)
                b.endRow()
            }
            return true
        }
    }

    struct AuditLogRows: RowSource {
        let table = "audit_logs"
        let columns = [
            "id", "server_id", "user_id", "action_type", "target_id", "target_type", "changes", "options", "reason",
            "created_at",
        ]
        let world: World
        let layout: TimeLayout
        private var index = 0
        private var json = JSONText()

        init(world: World) {
            self.world = world
            layout = TimeLayout(count: world.config.auditLogs)
        }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard index < layout.count else { return false }
            let j = index
            index += 1
            var r = Rng(seed: world.config.seed, .auditLogs, j)
            let time = layout.time(j, jitter: r.unit())
            let s = r.skewed(world.serversExisting(at: time), uniformShare: 0.2)
            let members = world.serverMembers.count(s)
            b.int(Timeline.snowflake(time, tag: Tag.auditLogs, sequence: Int64(j)))
            b.int(world.serverIDs[s])
            b.int(r.chance(0.93) ? world.userIDs[world.serverMembers.item(s, r.zipf(members))] : nil)
            let action = r.pick([1, 10, 11, 11, 12, 20, 22, 24, 24, 25, 25, 30, 31, 40, 72, 72])
            b.int(action)
            switch action {
            case 1:
                b.int(world.serverIDs[s])
                b.plain("server")
            case 10, 11, 12:
                let channels = world.serverChannels
                b.int(world.channelIDs[channels.item(s, r.int(channels.count(s)))])
                b.plain("channel")
            case 30, 31:
                b.int(world.roleIDs[world.serverRoles.item(s, r.int(world.serverRoles.count(s)))])
                b.plain("role")
            case 40:
                b.null()
                b.plain("invite")
            default:
                b.int(world.userIDs[world.serverMembers.item(s, r.int(members))])
                b.plain(action == 72 ? "message" : "user")
            }
            if r.chance(0.8) {
                json.clear()
                json.raw("[{\"key\":")
                json.string(r.pick(["name", "topic", "nick", "permissions", "$add", "$remove"] as [StaticString]))
                json.raw(",\"old_value\":")
                if r.chance(0.3) { json.raw("null") } else { json.string(TextMaker.phrase(&r, maxWords: 5, maxScalars: 100, hostileRate: 0.3)) }
                json.raw(",\"new_value\":")
                json.string(TextMaker.phrase(&r, maxWords: 5, maxScalars: 100, hostileRate: 0.3))
                json.raw("}]")
                b.text(json.bytes)
            } else {
                b.null()
            }
            if r.chance(0.2) {
                json.clear()
                json.raw("{\"channel_id\":")
                json.quotedInt(world.channelIDs[world.serverChannels.item(s, 0)])
                json.raw(",\"count\":\"")
                json.int(Int64(r.int(1...50)))
                json.raw("\",\"delete_member_days\":\"7\"}")
                b.text(json.bytes)
            } else {
                b.null()
            }
            b.text(r.chance(0.25) ? TextMaker.phrase(&r, maxWords: 30, maxScalars: 512, hostileRate: 0.25) : nil)
            b.timestamp(time)
            b.endRow()
            return true
        }
    }
}
