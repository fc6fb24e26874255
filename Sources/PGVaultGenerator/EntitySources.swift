// Row sources of the tables loaded before messages.

extension Synth {
    struct UserRows: RowSource {
        let table = "users"
        let columns = [
            "id", "public_id", "username", "discriminator", "email", "password_hash", "avatar_url", "banner_url", "bio",
            "is_verified", "is_bot", "is_system", "premium_type", "settings", "created_at", "updated_at", "deleted_at",
        ]
        let world: World
        private var index = 0
        private var taken = Set<[UInt8]>()
        private var json = JSONText()

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard index < world.users else { return false }
            let u = index
            index += 1
            var r = Rng(seed: world.config.seed, .userRows, u)
            let id = world.userIDs[u]
            let created = world.userCreated[u]
            let (name, discriminator) = uniqueName(u, &r)

            b.int(id)
            b.uuid(&r)
            b.text(name)
            b.text(discriminator)
            b.text(email(u, name, &r))
            var hash: [UInt8] = Array("$argon2id$v=19$m=65536,t=3,p=4$".utf8)
            Bits.random(&r, Bits.base64, count: 22, into: &hash)
            hash.append(0x24)
            Bits.random(&r, Bits.base64, count: 43, into: &hash)
            b.text(hash)
            b.text(r.chance(0.7) ? Bits.cdnURL(&r, kind: "avatars", id: id) : nil)
            b.text(r.chance(0.1) ? Bits.cdnURL(&r, kind: "banners", id: id, ext: "jpg") : nil)
            b.text(r.chance(0.4) ? TextMaker.phrase(&r, maxWords: 30, maxScalars: 190, hostileRate: 0.2) : nil)
            b.bool(r.chance(0.8))
            b.bool(u >= 10 && r.chance(0.02))
            b.bool(u == world.users - 1)
            b.int(r.chance(0.7) ? 0 : r.int(1...3))
            settings(u, &r)
            b.text(json.bytes)
            b.timestamp(created)
            b.timestamp(created + (r.chance(0.5) ? 0 : Bits.delay(&r, maxDays: 300)))
            b.timestamp(u >= max(10, world.users / 100) && r.chance(0.02) ? created + Bits.delay(&r, maxDays: 400) : nil)
            b.endRow()
            return true
        }

        /// username ~ ^[a-zA-Z0-9_]{2,32}$ and (username, discriminator) unique.
        private mutating func uniqueName(_ u: Int, _ r: inout Rng) -> ([UInt8], [UInt8]) {
            var name: [UInt8]
            let adjective = r.pick(Corpus.adjectives), noun = r.pick(Corpus.nouns)
            switch u == 0 ? -1 : r.int(10) {
            case -1: name = Array("power_user".utf8)
            case 0, 1, 2: name = Array("\(adjective)_\(noun)".utf8)
            case 3, 4: name = Bits.capitalized(adjective) + Bits.capitalized(noun)
            case 5: name = Array("\(noun)\(r.int(10_000))".utf8)
            case 6: name = Array("\(adjective)_\(noun)_\(r.int(100))".utf8)
            case 7: name = Array("xX_\(noun)_Xx".utf8)
            case 8: name = [Bits.base62[r.int(62)], Bits.base62[r.int(62)]]  // the shortest allowed
            default:
                name = Array("\(adjective)_\(noun)_\(adjective)_\(noun)_\(noun)".utf8)
                name = Array(name.prefix(32))
            }
            var disc = r.int(10_000)
            for attempt in 0..<10_001 {
                if attempt == 10_000 {  // every tag taken: make the name longer
                    name = Array(name.prefix(28)) + Array(String(u % 10_000).utf8)
                    disc = 0
                }
                var key = name
                key.append(0x23)
                key.appendZeroPadded(disc, width: 4)
                if taken.insert(key).inserted { break }
                disc = (disc + 1) % 10_000
            }
            var tag: [UInt8] = []
            tag.appendZeroPadded(disc, width: 4)
            return (name, tag)
        }

        /// Unique by construction (the user index is in it), also after lower().
        private func email(_ u: Int, _ name: [UInt8], _ r: inout Rng) -> [UInt8] {
            var out = name.map { $0 == 0x5F ? 0x2E : $0 }  // '_' is not allowed in the local part
            if r.chance(0.7) { out = out.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 } }
            out.append(0x2E)
            out.appendDecimalText(Int64(u))
            if r.chance(0.1) { out.append(contentsOf: Array("+chat".utf8)) }
            out.append(0x40)
            out.append(contentsOf: Array(r.pick(Corpus.emailDomains).utf8))
            return out
        }

        private mutating func settings(_ u: Int, _ r: inout Rng) {
            json.clear()
            if r.chance(0.15) {
                json.raw("{}")
                return
            }
            json.raw("{\"theme\":")
            json.string(r.chance(0.6) ? "dark" : "light")
            json.raw(",\"locale\":")
            json.string(Array(r.pick(Corpus.locales).utf8))
            json.raw(",\"compact_mode\":")
            json.bool(r.chance(0.2))
            json.raw(",\"notifications\":{\"desktop\":")
            json.bool(r.chance(0.7))
            json.raw(",\"mentions_only\":")
            json.bool(r.chance(0.3))
            json.raw(",\"muted_servers\":[")
            let memberOf = world.userServers.count(u)
            if memberOf > 1 && r.chance(0.3) {
                json.quotedInt(world.serverIDs[world.userServers.item(u, r.int(memberOf))])
            }
            json.raw("]}")
            if r.chance(0.3) {
                json.raw(",\"status\":{\"text\":")
                json.string(TextMaker.phrase(&r, maxWords: 6, maxScalars: 128, hostileRate: 0.3))
                json.raw(",\"emoji\":")
                json.string(r.pick(Corpus.reactionEmoji).bytes)
                json.raw(",\"expires_at\":null}")
            }
            if r.chance(0.1) {
                json.raw(",\"keybinds\":[{\"action\":\"PUSH_TO_TALK\",\"keys\":[\"ctrl\",\"`\",\"\\\\\"]}]")
            }
            if r.chance(0.05) {
                // Escapes jsonb decodes: "é" and a surrogate pair for 🎉.
                json.raw(",\"\\ud0a4\":\"\\u00e9t\\u00e9 \\ud83c\\udf89\",\"nested\":{\"deep\":{\"deeper\":[1,2.5,-3e2,true,null]}}")
            }
            json.raw("}")
        }
    }

    struct ServerRows: RowSource {
        let table = "servers"
        let columns = [
            "id", "public_id", "owner_id", "name", "description", "icon_url", "banner_url", "splash_url",
            "verification_level", "default_message_notifications", "explicit_content_filter", "features",
            "premium_tier", "premium_subscription_count", "system_channel_id", "rules_channel_id", "vanity_url_code",
            "max_members", "member_count", "created_at", "updated_at", "deleted_at",
        ]
        let world: World
        private var index = 0
        private var scratch: [UInt8] = []

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard index < world.servers else { return false }
            let s = index
            index += 1
            var r = Rng(seed: world.config.seed, .serverRows, s)
            let id = world.serverIDs[s]
            let created = world.serverCreated[s]
            let popular = s < max(1, world.servers / 20)

            b.int(id)
            b.uuid(&r)
            b.int(world.userIDs[Int(world.serverOwner[s])])
            b.text(name(s, &r))
            b.text(r.chance(0.6) ? TextMaker.phrase(&r, maxWords: 60, maxScalars: 1000, hostileRate: 0.15) : nil)
            b.text(r.chance(0.7) ? Bits.cdnURL(&r, kind: "icons", id: id) : nil)
            b.text(r.chance(0.2) ? Bits.cdnURL(&r, kind: "banners", id: id, ext: "jpg") : nil)
            b.text(r.chance(0.1) ? Bits.cdnURL(&r, kind: "splashes", id: id, ext: "jpg") : nil)
            b.int(r.int(0...4))
            b.int(r.int(0...1))
            b.int(r.int(0...2))
            var features: [[UInt8]] = []
            var chosen = Set<Int>()
            for _ in 0..<(popular ? r.int(3...8) : r.geometric(mean: 1, cap: 6)) {
                let f = r.int(Corpus.featureFlags.count)
                if chosen.insert(f).inserted { features.append(Corpus.featureFlags[f].bytes) }
            }
            if s == 1 || r.chance(0.05) { features += Corpus.hostileFeatures.map(\.bytes) }
            b.textArray(features, scratch: &scratch)
            let tier = popular ? r.int(1...3) : (r.chance(0.8) ? 0 : r.int(1...3))
            b.int(tier)
            b.int(tier == 0 ? r.int(0...1) : r.int(2...(tier * 15)))
            b.null()  // system_channel_id and rules_channel_id: set after channels are loaded
            b.null()
            if popular || r.chance(0.05) {
                var code: [UInt8] = Array(r.pick(Corpus.nouns).utf8)
                code.append(0x2D)
                code.appendDecimalText(Int64(s))
                b.text(code)
            } else {
                b.null()
            }
            b.int(popular ? 500_000 : r.pick([100, 250_000, 500_000]))
            b.int(world.serverMembers.count(s))
            b.timestamp(created)
            b.timestamp(created + Bits.delay(&r, maxDays: 200))
            b.timestamp(!popular && r.chance(0.01) ? created + Bits.delay(&r, maxDays: 300) : nil)
            b.endRow()
            return true
        }

        private func name(_ s: Int, _ r: inout Rng) -> [UInt8] {
            let hostile = Corpus.hostileServerNames
            if s % 17 == 5 { return hostile[(s / 17) % hostile.count].bytes }  // server 5: a tab in its name
            if r.chance(0.05) { return r.pick(hostile).bytes }
            var out = Bits.capitalized(r.pick(Corpus.adjectives))
            out.append(0x20)
            out += Bits.capitalized(r.pick(Corpus.nouns))
            out.append(0x20)
            out += Array(r.pick(Corpus.serverKinds).utf8)
            return out
        }
    }

    struct ChannelRows: RowSource {
        let table = "channels"
        let columns = [
            "id", "server_id", "parent_id", "type", "name", "topic", "position", "nsfw", "rate_limit_per_user",
            "bitrate", "user_limit", "default_auto_archive_duration", "permission_overwrites", "last_message_id",
            "last_pin_timestamp", "created_at", "updated_at", "deleted_at",
        ]
        let world: World
        private var index = 0
        private var json = JSONText()

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard index < world.channels else { return false }
            let c = index
            index += 1
            var r = Rng(seed: world.config.seed, .channelRows, c)
            let server = Int(world.channelServer[c])
            let type = world.channelType[c]
            let parent = Int(world.channelParent[c])
            let created = world.channelCreated[c]
            let isGeneral = server >= 0 && world.channelPosition[c] == 1
            let isText = type == 0 || type == 5
            let isVoice = type == 2 || type == 13
            let isThread = type == 10 || type == 11 || type == 12

            b.int(world.channelIDs[c])
            b.int(server >= 0 ? world.serverIDs[server] : nil)
            b.int(parent >= 0 ? world.channelIDs[parent] : nil)
            b.int(type)
            switch type {
            case 4: b.text(r.pick(Corpus.categoryNames).bytes)
            case 1: b.plain("dm")
            case 2, 13: b.text(r.pick(Corpus.voiceChannelNames).bytes)
            case 3, 10, 11, 12, 15: b.text(TextMaker.phrase(&r, maxWords: 8, maxScalars: 100, hostileRate: 0.2))
            default:
                if isGeneral {
                    b.plain("general")
                } else if server >= 0 && world.serverRulesChannel[server] == Int32(c) {
                    b.plain("rules")
                } else {
                    b.text(r.pick(Corpus.textChannelNames).bytes)
                }
            }
            b.text((isText || type == 15) && r.chance(0.5) ? TextMaker.phrase(&r, maxWords: 40, maxScalars: 1024, hostileRate: 0.2) : nil)
            b.int(world.channelPosition[c])
            b.bool(isText && r.chance(0.05))
            b.int(isText || isThread ? r.pick([0, 0, 0, 0, 0, 5, 10, 60, 21600]) : 0)
            b.int(isVoice ? r.pick([64000, 96000, 128000, 384000]) : nil)
            b.int(isVoice ? r.pick([0, 0, 5, 10, 25, 99]) : nil)
            b.int(isText || isThread || type == 15 ? r.pick([60, 1440, 4320, 10080]) : nil)
            json.clear()
            if server >= 0 && type != 4 && r.chance(0.1) {
                let everyone = world.roleIDs[world.serverRoles.item(server, 0)]
                json.raw("[{\"id\":")
                json.quotedInt(everyone)
                json.raw(",\"type\":0,\"allow\":\"0\",\"deny\":\"2048\"}]")
            } else {
                json.raw("[]")
            }
            b.text(json.bytes)
            b.null()  // last_message_id: set after messages are loaded
            b.timestamp(isText && r.chance(0.1) ? created + Bits.delay(&r, maxDays: 300) : nil)
            b.timestamp(created)
            b.timestamp(created + (r.chance(0.5) ? 0 : Bits.delay(&r, maxDays: 200)))
            b.timestamp(!isGeneral && r.chance(0.02) ? created + Bits.delay(&r, maxDays: 400) : nil)
            b.endRow()
            return true
        }
    }

    struct RoleRows: RowSource {
        let table = "roles"
        let columns = [
            "id", "server_id", "name", "color", "hoist", "position", "icon_url", "unicode_emoji", "permissions",
            "mentionable", "managed", "created_at", "updated_at",
        ]
        let world: World
        private var server = 0
        private var k = 0

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            while server < world.servers && k >= world.serverRoles.count(server) {
                server += 1
                k = 0
            }
            guard server < world.servers else { return false }
            let role = world.serverRoles.item(server, k)
            var r = Rng(seed: world.config.seed, .roles, role)
            let id = world.roleIDs[role]
            b.int(id)
            b.int(world.serverIDs[server])
            if k == 0 { b.plain("@everyone") } else { b.text(r.pick(Corpus.roleNames).bytes) }
            b.int(k == 0 ? 0 : r.int(0...0xFF_FFFF))
            b.bool(k > 0 && r.chance(0.4))
            b.int(k)
            b.text(k > 0 && r.chance(0.05) ? Bits.cdnURL(&r, kind: "role-icons", id: id) : nil)
            b.text(k > 0 && r.chance(0.1) ? r.pick(Corpus.roleEmoji).bytes : nil)
            b.int(k == 0 ? 104_324_673 : (k == 1 ? 8 : Int64(r.next() & 0xFF_FFFF_FFFF)))
            b.bool(k > 0 && r.chance(0.3))
            b.bool(k > 0 && r.chance(0.05))
            let created = world.roleCreated[role]
            b.timestamp(created)
            b.timestamp(created + (r.chance(0.5) ? 0 : Bits.delay(&r, maxDays: 200)))
            b.endRow()
            k += 1
            return true
        }
    }

    struct OverwriteRows: RowSource {
        let table = "channel_permission_overwrites"
        let columns = ["channel_id", "target_type", "target_id", "allow", "deny", "created_at", "updated_at"]
        let world: World
        private var channel = 0

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard channel < world.firstDM else { return false }
            let c = channel
            channel += 1
            var r = Rng(seed: world.config.seed, .overwrites, c)
            guard r.chance(0.2) else { return true }
            let server = Int(world.channelServer[c])
            var targets: [(Int, Int64)] = []
            for _ in 0..<r.int(1...3) {
                let target: (Int, Int64)
                if r.chance(0.6) {
                    let roles = world.serverRoles.count(server)
                    target = (0, world.roleIDs[world.serverRoles.item(server, r.zipf(roles))])
                } else {
                    let members = world.serverMembers.count(server)
                    target = (1, world.userIDs[world.serverMembers.item(server, r.zipf(members))])
                }
                if targets.contains(where: { $0 == target }) { continue }
                targets.append(target)
                b.int(world.channelIDs[c])
                b.int(target.0)
                b.int(target.1)
                b.int(Int64(r.next() & 0x3_FFFF_FFFF))
                b.int(r.chance(0.5) ? 0 : Int64(r.next() & 0xFFFF))
                let created = world.channelCreated[c] + Bits.delay(&r, maxDays: 60)
                b.timestamp(created)
                b.timestamp(created + (r.chance(0.5) ? 0 : Bits.delay(&r, maxDays: 60)))
                b.endRow()
            }
            return true
        }
    }

    /// Walks the memberships server by server: (server, membership index).
    struct MembershipCursor {
        private var server = 0
        private var m = 0

        mutating func next(_ world: World) -> (server: Int, membership: Int)? {
            while server < world.servers && m >= Int(world.serverMembers.start[server + 1]) { server += 1 }
            guard server < world.servers else { return nil }
            defer { m += 1 }
            return (server, m)
        }
    }

    struct MemberRows: RowSource {
        let table = "server_members"
        let columns = [
            "server_id", "user_id", "nickname", "avatar_url", "joined_at", "premium_since", "deaf", "mute", "pending",
            "communication_disabled_until", "created_at", "updated_at",
        ]
        let world: World
        private var cursor = MembershipCursor()

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard let (server, m) = cursor.next(world) else { return false }
            var (r, u, joined) = world.membership(server, m)
            b.int(world.serverIDs[server])
            b.int(world.userIDs[u])
            b.text(r.chance(0.15) ? TextMaker.phrase(&r, maxWords: 4, maxScalars: 32, hostileRate: 0.4) : nil)
            b.text(r.chance(0.05) ? Bits.cdnURL(&r, kind: "member-avatars", id: world.userIDs[u]) : nil)
            b.timestamp(joined)
            b.timestamp(r.chance(0.05) ? joined + Bits.delay(&r, maxDays: 200) : nil)
            b.bool(r.chance(0.01))
            b.bool(r.chance(0.01))
            b.bool(r.chance(0.02))
            b.timestamp(r.chance(0.01) ? joined + Bits.delay(&r, maxDays: 300) : nil)
            b.timestamp(joined)
            b.timestamp(joined + (r.chance(0.6) ? 0 : Bits.delay(&r, maxDays: 200)))
            b.endRow()
            return true
        }
    }

    struct MemberRoleRows: RowSource {
        let table = "server_members_roles"
        let columns = ["server_id", "user_id", "role_id", "assigned_at"]
        let world: World
        private var cursor = MembershipCursor()

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard let (server, m) = cursor.next(world) else { return false }
            let (_, u, joined) = world.membership(server, m)
            var r = Rng(seed: world.config.seed, .memberRoles, m)
            let roles = world.serverRoles.count(server)
            guard roles > 1 else { return true }
            var picked: [Int] = []
            if Int(world.serverOwner[server]) == u { picked.append(1) }
            if r.chance(0.4) {
                for _ in 0..<r.int(1...2) {
                    let k = 1 + r.int(roles - 1)
                    if !picked.contains(k) { picked.append(k) }
                }
            }
            for k in picked {
                b.int(world.serverIDs[server])
                b.int(world.userIDs[u])
                b.int(world.roleIDs[world.serverRoles.item(server, k)])
                b.timestamp(max(joined, world.roleCreated[world.serverRoles.item(server, k)]) + Bits.delay(&r, maxDays: 30))
                b.endRow()
            }
            return true
        }
    }

    struct InviteRows: RowSource {
        let table = "invites"
        /// expires_at is generated from created_at and max_age: never in a COPY list.
        let columns = [
            "code", "server_id", "channel_id", "inviter_id", "max_uses", "uses", "max_age", "temporary", "target_type",
            "target_user_id", "created_at",
        ]
        let world: World
        private var index = 0
        private var codes = Set<[UInt8]>()

        init(world: World) { self.world = world }

        mutating func emit(into b: inout CopyBuffer) -> Bool {
            guard index < world.config.invites else { return false }
            var r = Rng(seed: world.config.seed, .invites, index)
            index += 1
            let s = r.skewed(world.servers, uniformShare: 0.2)
            let channels = world.serverMessageChannels
            let c = channels.item(s, r.zipf(channels.count(s)))
            var code: [UInt8] = []
            repeat {
                code.removeAll()
                Bits.random(&r, Bits.base62, count: r.chance(0.9) ? 8 : r.int(10...32), into: &code)
            } while !codes.insert(code).inserted
            b.text(code)
            b.int(world.serverIDs[s])
            b.int(world.channelIDs[c])
            let members = world.serverMembers.count(s)
            b.int(r.chance(0.9) ? world.userIDs[world.serverMembers.item(s, r.zipf(members))] : nil)
            let maxUses = r.pick([0, 0, 0, 1, 5, 10, 25, 50, 100])
            b.int(maxUses)
            b.int(maxUses == 0 ? r.geometric(mean: 8) : r.int(0...maxUses))
            b.int(r.pick([0, 1800, 3600, 21600, 43200, 86400, 86400, 604800]))
            b.bool(r.chance(0.1))
            if r.chance(0.05) {
                b.int(r.int(1...2))
                b.int(world.userIDs[r.int(world.users)])
            } else {
                b.null()
                b.null()
            }
            b.timestamp(max(world.serverCreated[s], world.channelCreated[c]) + Bits.delay(&r, maxDays: 500))
            b.endRow()
            return true
        }
    }
}
