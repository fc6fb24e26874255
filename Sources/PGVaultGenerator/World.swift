extension Synth {
    /// Lists of lists in two flat arrays (compressed sparse rows).
    struct CSR: Sendable {
        let start: [Int32]
        let items: [Int32]

        init(start: [Int32], items: [Int32]) {
            self.start = start
            self.items = items
        }

        /// From per-row lists.
        init(_ lists: [[Int32]]) {
            var start: [Int32] = [0]
            start.reserveCapacity(lists.count + 1)
            var items: [Int32] = []
            items.reserveCapacity(lists.reduce(0) { $0 + $1.count })
            for list in lists {
                items.append(contentsOf: list)
                start.append(Int32(items.count))
            }
            self.init(start: start, items: items)
        }

        /// The transpose: for every item value v in 0..<columns, the rows holding it
        /// (ascending).
        func transposed(columns: Int) -> CSR {
            var counts = [Int32](repeating: 0, count: columns + 1)
            for v in items { counts[Int(v) + 1] += 1 }
            for i in 0..<columns { counts[i + 1] += counts[i] }
            var fill = counts
            var out = [Int32](repeating: 0, count: items.count)
            for row in 0..<(start.count - 1) {
                for k in Int(start[row])..<Int(start[row + 1]) {
                    let v = Int(items[k])
                    out[Int(fill[v])] = Int32(row)
                    fill[v] += 1
                }
            }
            return CSR(start: counts, items: out)
        }

        var rows: Int { start.count - 1 }
        func count(_ row: Int) -> Int { Int(start[row + 1] - start[row]) }
        func range(_ row: Int) -> Range<Int> { Int(start[row])..<Int(start[row + 1]) }
        func item(_ row: Int, _ k: Int) -> Int { Int(items[Int(start[row]) + k]) }
    }

    /// Per-table snowflake tags (the 10 "worker" bits).
    enum Tag {
        static let users: Int64 = 513, servers: Int64 = 514, channels: Int64 = 515, roles: Int64 = 516
        static let messages: Int64 = 517, auditLogs: Int64 = 518, customEmoji: Int64 = 519
    }

    /// Hands out snowflake ids for rows whose times are not in index order: the
    /// sequence is bumped until the id is unused.
    struct IDAllocator {
        let tag: Int64
        private var used = Set<Int64>()

        init(tag: Int64) { self.tag = tag }

        mutating func next(_ time: Int64, _ sequence: Int) -> Int64 {
            var seq = Int64(sequence)
            while true {
                let id = Timeline.snowflake(time, tag: tag, sequence: seq)
                if used.insert(id).inserted { return id }
                seq += 1
            }
        }
    }

    /// The part of the data every table refers to, built in memory before loading
    /// (ids, creation times and who belongs where; a few MB at the default scale).
    /// Rows themselves are produced while streaming.
    struct World: Sendable {
        let config: GeneratorConfig

        let userIDs: [Int64]
        let userCreated: [Int64]
        let serverIDs: [Int64]
        let serverCreated: [Int64]
        let serverOwner: [Int32]
        /// Servers of each user, ascending (server index = popularity rank).
        let userServers: CSR
        /// Members of each server, ascending (user index = activity rank).
        let serverMembers: CSR

        let channelIDs: [Int64]
        /// -1 for DMs and group DMs.
        let channelServer: [Int32]
        let channelType: [UInt8]
        /// -1 for none.
        let channelParent: [Int32]
        let channelPosition: [Int32]
        let channelCreated: [Int64]
        /// Channels of each server (contiguous ranges of channel indices).
        let serverChannels: CSR
        /// Channels of each server that hold messages, busiest first.
        let serverMessageChannels: CSR
        let serverSystemChannel: [Int32]
        let serverRulesChannel: [Int32]
        /// DM and group DM channels are channel indices firstDM..<channelIDs.count.
        let firstDM: Int
        /// Participants of each DM channel (index channel - firstDM).
        let dmParticipants: CSR
        /// DM channels of each user (channel indices).
        let userDMs: CSR

        let roleIDs: [Int64]
        let roleCreated: [Int64]
        /// Roles of each server; the first is @everyone (position 0).
        let serverRoles: CSR

        var users: Int { userIDs.count }
        var servers: Int { serverIDs.count }
        var channels: Int { channelIDs.count }

        /// Users created by `time` (at least a small pool, for the rows dated before
        /// the first user: imported history).
        func usersExisting(at time: Int64) -> Int {
            max(min(users, 50), Timeline.entitiesExisting(at: time, of: users, from: Timeline.rangeStart, to: Timeline.entitiesEnd))
        }

        func serversExisting(at time: Int64) -> Int {
            max(1, Timeline.entitiesExisting(at: time, of: servers, from: Self.serverStart, to: Timeline.entitiesEnd))
        }

        static let serverStart = Timeline.rangeStart + Timeline.hour

        init(_ config: GeneratorConfig) {
            self.config = config
            let seed = config.seed
            let nUsers = config.users
            let nServers = config.servers

            // Users: created in index order, front-loaded; user 0 first.
            var rng = Rng(seed: seed, .world)
            var userAlloc = IDAllocator(tag: Tag.users)
            var userCreated: [Int64] = []
            var userIDs: [Int64] = []
            userCreated.reserveCapacity(nUsers)
            userIDs.reserveCapacity(nUsers)
            for u in 0..<nUsers {
                let t = Timeline.entityTime(u, of: nUsers, from: Timeline.rangeStart, to: Timeline.entitiesEnd, jitter: rng.unit())
                userCreated.append(t)
                userIDs.append(userAlloc.next(t, u))
            }
            self.userCreated = userCreated
            self.userIDs = userIDs

            // Servers: popularity rank = index = creation order.
            var serverAlloc = IDAllocator(tag: Tag.servers)
            var serverCreated: [Int64] = []
            var serverIDs: [Int64] = []
            var serverOwner: [Int32] = []
            for s in 0..<nServers {
                let t = Timeline.entityTime(s, of: nServers, from: Self.serverStart, to: Timeline.entitiesEnd, jitter: rng.unit())
                serverCreated.append(t)
                serverIDs.append(serverAlloc.next(t, s))
                let existing = max(1, Timeline.entitiesExisting(at: t, of: nUsers, from: Timeline.rangeStart, to: Timeline.entitiesEnd))
                serverOwner.append(s < 3 ? 0 : Int32(rng.skewed(existing, uniformShare: 0.9)))
            }
            self.serverCreated = serverCreated
            self.serverIDs = serverIDs
            self.serverOwner = serverOwner

            // Memberships: a few servers per user, popular servers likelier; heavy
            // users (low index) join many; owners belong to their servers.
            var lists = [[Int32]](repeating: [], count: nUsers)
            var picked = Set<Int32>()
            for u in 0..<nUsers {
                var r = Rng(seed: seed, .memberships, u)
                var k = 1 + r.geometric(mean: max(0, config.membershipsPerUser - 1), cap: nServers)
                if u < max(1, nUsers / 200) { k += 8 }
                if u == 0 { k = max(k, 25) }
                k = min(k, nServers)
                picked.removeAll(keepingCapacity: true)
                var attempts = 0
                while picked.count < k && attempts < 50 * k {
                    picked.insert(Int32(r.skewed(nServers, uniformShare: 0.3)))
                    attempts += 1
                }
                var s: Int32 = 0
                while picked.count < k {
                    picked.insert(s)
                    s += 1
                }
                lists[u] = Array(picked)
            }
            for s in 0..<nServers {
                let owner = Int(serverOwner[s])
                if !lists[owner].contains(Int32(s)) { lists[owner].append(Int32(s)) }
            }
            for u in 0..<nUsers { lists[u].sort() }
            userServers = CSR(lists)
            serverMembers = userServers.transposed(columns: nServers)

            // Server channels: a text category with #general first, then a mix of
            // text, voice, announcement, forum, stage, thread and category channels.
            var channelAlloc = IDAllocator(tag: Tag.channels)
            var channelIDs: [Int64] = []
            var channelServer: [Int32] = []
            var channelType: [UInt8] = []
            var channelParent: [Int32] = []
            var channelPosition: [Int32] = []
            var channelCreated: [Int64] = []
            var serverChannelStart: [Int32] = [0]
            var messageLists: [[Int32]] = []
            var systemChannel: [Int32] = []
            var rulesChannel: [Int32] = []
            func addChannel(_ server: Int, _ type: UInt8, parent: Int32, position: Int, created: Int64) -> Int32 {
                let c = Int32(channelIDs.count)
                channelIDs.append(channelAlloc.next(created, Int(c)))
                channelServer.append(Int32(server))
                channelType.append(type)
                channelParent.append(parent)
                channelPosition.append(Int32(position))
                channelCreated.append(created)
                return c
            }
            let range = config.channelsPerServer
            for s in 0..<nServers {
                var r = Rng(seed: seed, .channelLayout, s)
                let n = s < max(1, nServers / 20) ? range.upperBound : r.int(range)
                var t = serverCreated[s] + Timeline.minute
                let category = addChannel(s, 4, parent: -1, position: 0, created: t)
                t += Int64(r.int(1...300)) * Timeline.second
                let general = addChannel(s, 0, parent: category, position: 1, created: t)
                var messageChannels: [Int32] = [general]
                var textLike: [Int32] = [general]
                var announcements: [Int32] = []
                var voiceCategory: Int32 = -1
                var rules: Int32 = -1
                for position in 2..<n {
                    t += Int64(r.int(1...3600)) * Timeline.second
                    if position == 2 && r.chance(0.3) {
                        rules = addChannel(s, 0, parent: category, position: position, created: t)
                        messageChannels.append(rules)
                        continue
                    }
                    let roll = r.unit()
                    let c: Int32
                    switch roll {
                    case ..<0.45:
                        c = addChannel(s, 0, parent: category, position: position, created: t)
                        textLike.append(c)
                        messageChannels.append(c)
                    case ..<0.60:
                        if voiceCategory < 0 {
                            voiceCategory = addChannel(s, 4, parent: -1, position: position, created: t)
                            continue
                        }
                        c = addChannel(s, r.chance(0.8) ? 2 : 13, parent: voiceCategory, position: position, created: t)
                    case ..<0.68:
                        c = addChannel(s, 5, parent: category, position: position, created: t)
                        announcements.append(c)
                        textLike.append(c)
                        messageChannels.append(c)
                    case ..<0.72:
                        c = addChannel(s, 15, parent: category, position: position, created: t)
                    case ..<0.94:
                        var type: UInt8 = r.chance(0.7) ? 11 : 12
                        var parent = textLike[r.int(textLike.count)]
                        if !announcements.isEmpty && r.chance(0.2) {
                            type = 10
                            parent = announcements[r.int(announcements.count)]
                        }
                        c = addChannel(s, type, parent: parent, position: position, created: t + Int64(r.int(1...90)) * Timeline.day)
                        messageChannels.append(c)
                    default:
                        c = addChannel(s, 4, parent: -1, position: position, created: t)
                    }
                    _ = c
                }
                serverChannelStart.append(Int32(channelIDs.count))
                messageLists.append(messageChannels)
                systemChannel.append(r.chance(0.9) ? general : -1)
                rulesChannel.append(rules)
            }
            serverChannels = CSR(start: serverChannelStart, items: Array(0..<Int32(channelIDs.count)))
            serverMessageChannels = CSR(messageLists)
            serverSystemChannel = systemChannel
            serverRulesChannel = rulesChannel

            // DMs between two users (the busy ones in many), then group DMs.
            firstDM = channelIDs.count
            var participants: [[Int32]] = []
            var pairs = Set<Int64>()
            var d = Rng(seed: seed, .dms)
            for _ in 0..<config.dmChannels {
                for _ in 0..<50 {
                    let a = d.skewed(nUsers, uniformShare: 0.3), b = d.int(nUsers)
                    guard a != b, pairs.insert(Int64(min(a, b)) << 32 | Int64(max(a, b))).inserted else { continue }
                    let t = max(userCreated[a], userCreated[b]) + Int64(d.int(60...(30 * 86_400))) * Timeline.second
                    _ = addChannel(-1, 1, parent: -1, position: 0, created: t)
                    participants.append([Int32(a), Int32(b)])
                    break
                }
            }
            for _ in 0..<config.groupDMs {
                var group: [Int32] = [Int32(d.skewed(nUsers, uniformShare: 0.3))]
                let size = min(nUsers, d.int(3...6))
                while group.count < size {
                    let u = Int32(d.int(nUsers))
                    if !group.contains(u) { group.append(u) }
                }
                let t = group.map { userCreated[Int($0)] }.max()! + Int64(d.int(60...(60 * 86_400))) * Timeline.second
                _ = addChannel(-1, 3, parent: -1, position: 0, created: t)
                participants.append(group)
            }
            dmParticipants = CSR(participants)
            let byUser = dmParticipants.transposed(columns: nUsers)
            let dmBase = Int32(firstDM)
            userDMs = CSR(start: byUser.start, items: byUser.items.map { $0 + dmBase })

            self.channelIDs = channelIDs
            self.channelServer = channelServer
            self.channelType = channelType
            self.channelParent = channelParent
            self.channelPosition = channelPosition
            self.channelCreated = channelCreated

            // Roles: @everyone at position 0, then positions 1... (unique per server).
            var roleAlloc = IDAllocator(tag: Tag.roles)
            var roleIDs: [Int64] = []
            var roleCreated: [Int64] = []
            var roleStart: [Int32] = [0]
            for s in 0..<nServers {
                var r = Rng(seed: seed, .roleLayout, s)
                let n = s < max(1, nServers / 20) ? config.rolesPerServer.upperBound : r.int(config.rolesPerServer)
                var t = serverCreated[s]
                for k in 0..<n {
                    if k > 0 { t += Int64(r.int(60...(7 * 86_400))) * Timeline.second }
                    roleCreated.append(t)
                    roleIDs.append(roleAlloc.next(t, roleIDs.count))
                }
                roleStart.append(Int32(roleIDs.count))
            }
            self.roleIDs = roleIDs
            self.roleCreated = roleCreated
            serverRoles = CSR(start: roleStart, items: Array(0..<Int32(roleIDs.count)))
        }

        var memberships: Int { serverMembers.items.count }

        /// Membership m of server s (user u): its generator and join time, shared by the
        /// member and member-role rows.
        func membership(_ s: Int, _ m: Int) -> (rng: Rng, user: Int, joined: Int64) {
            var r = Rng(seed: config.seed, .memberRows, m)
            let u = Int(serverMembers.items[m])
            let earliest = max(serverCreated[s], userCreated[u])
            let joined = Int(serverOwner[s]) == u ? serverCreated[s] : earliest + Bits.delay(&r, maxDays: 90)
            return (r, u, joined)
        }
    }
}
