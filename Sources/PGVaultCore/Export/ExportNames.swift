/// Names for the numeric codes of the schema (docs/export-format.md).
enum ExportNames {
    static let channelTypes: [Int: String] = [
        0: "GUILD_TEXT", 1: "DM", 2: "GUILD_VOICE", 3: "GROUP_DM", 4: "GUILD_CATEGORY",
        5: "GUILD_ANNOUNCEMENT", 10: "ANNOUNCEMENT_THREAD", 11: "PUBLIC_THREAD", 12: "PRIVATE_THREAD",
        13: "GUILD_STAGE_VOICE", 14: "GUILD_DIRECTORY", 15: "GUILD_FORUM",
    ]
    static let messageTypes: [Int: String] = [
        0: "DEFAULT", 1: "RECIPIENT_ADD", 2: "RECIPIENT_REMOVE", 3: "CALL", 4: "CHANNEL_NAME_CHANGE",
        5: "CHANNEL_ICON_CHANGE", 6: "CHANNEL_PINNED_MESSAGE", 7: "USER_JOIN", 8: "GUILD_BOOST",
        19: "REPLY", 20: "CHAT_INPUT_COMMAND",
    ]
}
