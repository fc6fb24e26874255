/// README.txt of an export package: what each file holds, for a person.
/// docs/export-format.md is the full reference.
enum ExportReadme {
    static func text(tag: String, userID: String, generatedAt: String, snapshotAt: String) -> String {
        """
        Your data export
        ================

        Account:        \(tag) (id \(userID))
        Package made:   \(generatedAt)
        Data as of:     \(snapshotAt)

        This package holds everything the chat service stores about your account,
        read from one consistent snapshot of its database. Every file except this
        one is JSON (UTF-8): field names are stable, times are ISO-8601 in UTC
        (e.g. 2024-05-01T12:00:00.000000Z), and ids are strings, because they are
        64-bit numbers that many JSON readers would round.

        Files
        -----
        README.txt
            This text.
        manifest.json
            What the package holds: how many messages, reactions, ... (counts),
            and the size and SHA-256 checksum of every other file (files).
        account/user.json
            Your profile and settings: username, email, avatar, bio, premium
            status, settings, when the account was created. Your password is
            never exported, not even as a hash.
        servers/index.json
            The servers you are a member of (memberships, each with the name of
            its file below) and the servers you own (owned_servers).
        servers/s<server id>.json
            One file per membership: the server, your nickname, when you joined,
            and your roles there.
        messages/index.json
            Every channel you wrote in, with how many messages you wrote there
            and the folder that holds them.
        messages/c<channel id>/channel.json
            The channel: its name, type, and server; for direct messages, the
            other participants (their ids and public names only).
        messages/c<channel id>/messages.json
            Your messages in that channel, oldest first: text, when it was sent
            and last edited, the message it replies to (its id and author, not
            its text), the users and roles it mentions (ids), embeds, and the
            metadata of its attachments (name, type, size, link). Messages you
            deleted that the service still holds are included, with
            "deleted": true and when they were deleted.
        reactions/reactions.json
            The reactions you added: which emoji, on which message, when.
        invites/invites.json
            The invites you created.
        audit_log/audit_log.json
            Server audit-log entries of actions you took. Where an entry
            recorded another person's private data (an email address, a
            password hash, their settings, the text of their message), that
            value is replaced by "[redacted]".

        Nothing in this package is private information about another person:
        other people appear only by id and public name (username#discriminator)
        where that is needed to make sense of your own data.

        """
    }
}
