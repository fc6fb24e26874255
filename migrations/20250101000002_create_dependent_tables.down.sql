DROP TABLE channel_permission_overwrites;
DROP TABLE roles;
ALTER TABLE servers
    DROP CONSTRAINT servers_fk_rules_channel,
    DROP CONSTRAINT servers_fk_system_channel;
DROP TABLE channels;
