extension Synth {
    /// A piece of text with its length in characters (Unicode scalars, which is what
    /// PostgreSQL's varchar(n) counts in UTF-8).
    struct Fragment: Sendable {
        let bytes: [UInt8]
        let scalars: Int

        init(_ text: String) {
            bytes = Array(text.utf8)
            scalars = text.unicodeScalars.count
        }
    }

    /// Word lists and name parts.
    enum Corpus {
        static let hostile: [Fragment] = GeneratorSamples.hostileFragments.map(Fragment.init)
        static let kitchenSink = Fragment(GeneratorSamples.kitchenSink)

        static let words: [Fragment] = """
            the a to and of is in it you that for on this was with are just have but not be at so what \
            like can do if me my we all get one no up out about when your yes lol ok good know think \
            time now people will how really more see want would there go they or some new here game \
            server channel message bot role voice stream music play night today tomorrow week build \
            deploy bug fix release test merge branch review thanks please sorry nice cool great awesome \
            anyone help question answer idea plan meeting link photo video meme update patch raid boss \
            level quest loot guild team match rank win lose gg wp brb afk irl tbh imo btw hype pog \
            coffee pizza weekend monday friday morning evening sleep work school exam project deadline
            """.split(separator: " ").map { Fragment(String($0)) }

        static let foreignWords: [Fragment] = [
            "안녕", "감사합니다", "좋아요", "ㅋㅋㅋ", "내일", "게임", "서버", "음악", "café", "déjà", "vu", "über", "señor",
            "façade", "smørrebrød", "Ærø", "naïve", "привет", "γειά", "שלום", "こんにちは", "ありがとう", "你好", "谢谢",
            "😂", "🔥", "💯", "👀", "🙏", "✨", "🥲", "🤔", "👋🏾", "🧑‍💻", "❤️‍🔥",
        ].map(Fragment.init)

        static let adjectives = [
            "swift", "quiet", "brave", "lazy", "happy", "dark", "cosmic", "silver", "tiny", "mega", "neon", "frosty",
            "sleepy", "wild", "lucky", "pixel", "retro", "salty", "spicy", "cozy", "rusty", "golden", "hidden", "noisy",
        ]
        static let nouns = [
            "otter", "fox", "panda", "wizard", "ninja", "coder", "gamer", "pilot", "dragon", "kitten", "falcon", "tiger",
            "robot", "ghost", "penguin", "knight", "bard", "owl", "badger", "comet", "pancake", "cactus", "llama", "mango",
        ]

        static let serverKinds = [
            "Club", "Hangout", "Guild", "Lounge", "Community", "Crew", "HQ", "Study Group", "Fan Club", "Devs", "모임",
            "Café ☕", "Squad 🎮", "Collective", "Network",
        ]

        static let hostileServerNames: [Fragment] = [
            "Tab\tServer", "New\nLine Server", "Back\\slash Gang", "\\N", "\"Quoted\" Server", "It's Complicated",
            "한국 개발자 모임 🇰🇷", "Ünïcödé Çafé", "👨‍👩‍👧‍👦 Family", "NULL", "{a,b}", "Ω Server",
        ].map(Fragment.init)

        static let textChannelNames: [Fragment] = [
            "general", "random", "off-topic", "memes", "dev-chat", "help", "showcase", "music", "gaming", "art",
            "announcements", "links", "support", "bot-commands", "introductions", "음악", "잡담", "🎮-gaming",
            "café-talk", "日本語-chat", "help\\desk", "tab\tchannel", "\\N", "quote-\"this\"",
        ].map(Fragment.init)

        static let voiceChannelNames: [Fragment] = [
            "General", "Lounge 🎧", "Gaming", "Music", "AFK", "Study Room", "회의실", "Stage ✨",
        ].map(Fragment.init)

        static let categoryNames: [Fragment] = [
            "Text Channels", "Voice Channels", "INFO", "COMMUNITY", "📚 Resources", "아카이브", "Staff Only",
        ].map(Fragment.init)

        static let roleNames: [Fragment] = [
            "Admin", "Moderator", "Member", "VIP", "🎨 Artist", "레벨 10", "Bot", "Quote \"Master\"", "Back\\slash",
            "Tab\tRole", "Booster 💎", "Helper", "Veteran", "Muted", "DJ", "Événement", "\\N", "NULL",
        ].map(Fragment.init)

        static let roleEmoji: [Fragment] = ["🛡️", "⭐", "🎨", "💎", "🔥", "👑", "🏳️‍🌈", "🧑‍💻"].map(Fragment.init)

        /// Unicode reactions (emoji_id NULL).
        static let reactionEmoji: [Fragment] = [
            "👍", "❤️", "😂", "🎉", "😮", "😢", "🔥", "👀", "💯", "🙏", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇰🇷", "✅", "❌",
        ].map(Fragment.init)

        /// Custom reactions: (name, animated); their ids are derived from the index.
        static let customEmoji: [(name: Fragment, animated: Bool)] = [
            ("pepe_laugh", false), ("kekw", false), ("blobwave", true), ("catJAM", true), ("monkaS", false),
            ("partyparrot", true), ("thonk", false), ("웃음", false), ("pog", false), ("sadge", false),
        ].map { (Fragment($0.0), $0.1) }

        static let featureFlags: [Fragment] = [
            "COMMUNITY", "NEWS", "ANIMATED_ICON", "BANNER", "VANITY_URL", "INVITE_SPLASH", "PARTNERED", "VERIFIED",
            "DISCOVERABLE", "WELCOME_SCREEN_ENABLED", "MEMBER_VERIFICATION_GATE_ENABLED", "PREVIEW_ENABLED",
            "ROLE_ICONS", "THREADS_ENABLED",
        ].map(Fragment.init)
        static let hostileFeatures: [Fragment] = GeneratorSamples.hostileFeatures.map(Fragment.init)

        static let fileStems: [Fragment] = [
            "image", "screenshot", "IMG_2024", "résumé final (2)", "사진", "tab\there", "back\\slash", "quote\"d",
            "emoji 🎉", "\\N", "line\nbreak", "report,final", "notes", "データ", "spaces   many", ".hidden", "NULL",
        ].map(Fragment.init)

        static let fileTypes: [(ext: Fragment, contentType: Fragment?, kind: FileKind)] = {
            let types: [(String, String?, FileKind)] = [
                ("png", "image/png", .image), ("jpg", "image/jpeg", .image), ("gif", "image/gif", .image),
                ("webp", "image/webp", .image), ("mp4", "video/mp4", .video), ("mp3", "audio/mpeg", .audio),
                ("ogg", "audio/ogg", .audio), ("pdf", "application/pdf", .other),
                ("txt", "text/plain; charset=utf-8", .other), ("zip", "application/zip", .other), ("bin", nil, .other),
            ]
            return types.map { (Fragment($0.0), $0.1.map(Fragment.init), $0.2) }
        }()

        enum FileKind { case image, video, audio, other }

        static let emailDomains = [
            "example.com", "example.org", "mail.example.net", "naver.example.kr", "proton.example.me", "test.example.io",
        ]

        static let locales = ["en-US", "ko", "ja", "de", "fr", "pt-BR", "es-ES", "zh-CN"]
    }

    /// Builds text from the corpus, within a character limit.
    struct TextMaker {
        /// Appends about `words` tokens separated by spaces, never exceeding
        /// `maxScalars` characters in total (counting what `out` already holds as
        /// `used`). Returns the number of characters now used.
        @discardableResult
        static func words(
            _ rng: inout Rng, into out: inout [UInt8], count: Int, hostileRate: Double,
            maxScalars: Int, used: Int = 0
        ) -> Int {
            var used = used
            for i in 0..<count {
                let fragment: Fragment
                let roll = rng.unit()
                if roll < hostileRate {
                    fragment = rng.pick(Corpus.hostile)
                } else if roll < hostileRate + 0.06 {
                    fragment = rng.pick(Corpus.foreignWords)
                } else {
                    fragment = rng.pick(Corpus.words)
                }
                let extra = (i > 0 || used > 0 ? 1 : 0) + fragment.scalars
                if used + extra > maxScalars { break }
                if i > 0 || used > 0 { out.append(0x20) }
                out.append(contentsOf: fragment.bytes)
                used += extra
            }
            return used
        }

        /// Appends a fragment if it fits; returns the characters now used.
        @discardableResult
        static func append(_ fragment: Fragment, into out: inout [UInt8], used: Int, maxScalars: Int) -> Int {
            guard used + fragment.scalars <= maxScalars else { return used }
            out.append(contentsOf: fragment.bytes)
            return used + fragment.scalars
        }

        /// A short text of 1..maxWords tokens (bios, topics, nicknames, reasons).
        static func phrase(_ rng: inout Rng, maxWords: Int, maxScalars: Int, hostileRate: Double = 0.15) -> [UInt8] {
            var out: [UInt8] = []
            let used = words(&rng, into: &out, count: rng.int(1...maxWords), hostileRate: hostileRate, maxScalars: maxScalars)
            if used == 0 { out = Array("x".utf8) }
            return out
        }
    }
}
