/// Samples of the text the generator writes, public so tests can look for
/// them byte for byte after a load.
public enum GeneratorSamples {
    /// Text that is hostile to COPY, CSV, JSON and SQL quoting, one fragment per
    /// trap. Generated text mixes these in; ``kitchenSink`` holds them all.
    public static let hostileFragments: [String] = [
        "\t", "\n", "\r\n", "\r", "tab\there", "line1\nline2", "\\", "\\N", "\\\\N", "\\n (not a newline)",
        "\n\\.\n", "C:\\Users\\me\\file.txt", "'single'", "\"double\"", "it's", "''", "\"\"",
        "😀", "🎉", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇰🇷", "❤️", "한국어", "안녕하세요 👋", "café", "naïve", "Zürich",
        "e\u{301}", "ﬁ", "مرحبا", "\u{200B}", "\u{FEFF}", "𝕳𝖊𝖑𝖑𝖔", "日本語", "Ω≈ç√∫", "¯\\_(ツ)_/¯",
        "\u{0B}", "\u{0C}", "\u{08}", "\u{7F}", "\u{1B}[31m", "NULL", "null", "{\"json\": true}", "{a,b}", "\"{}\"",
        "<script>alert(1)</script>", "'; DROP TABLE users; --", "%s %d %n", "${HOME}", "$1", "\\x00",
    ]

    /// Every hostile fragment in one string (some generated messages have
    /// exactly this content).
    public static var kitchenSink: String { hostileFragments.joined(separator: " ") }

    /// Elements of servers.features that need quoting in an array literal; some
    /// servers have all of them.
    public static let hostileFeatures: [String] = [
        "NULL", "", "with space", "comma,inside", "{braces}", "quote\"inside", "back\\slash", "tab\tinside",
        "기능 ✨", "\\N",
    ]
}
