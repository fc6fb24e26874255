-- Indexes: design section 4, plus the indexes that reach every row belonging
-- to one user (per-user export) and that serve foreign-key checks on delete.
-- Indexes on partitioned tables are created on every partition.
-- (Not CONCURRENTLY: migrations run inside a transaction.)

-- 4.1 users
-- Email lookup (login)
CREATE UNIQUE INDEX idx_users_email
ON users (lower(email))
WHERE deleted_at IS NULL;

-- Username search (trigram for fuzzy search; pg_trgm is created in the
-- extensions migration)
CREATE INDEX idx_users_username_trgm
ON users USING gin (username gin_trgm_ops);

-- Username#discriminator lookup
CREATE UNIQUE INDEX idx_users_username_discriminator
ON users (username, discriminator)
WHERE deleted_at IS NULL;

-- Public ID lookup (API)
CREATE UNIQUE INDEX idx_users_public_id
ON users (public_id);

-- 4.2 messages
-- Channel messages (keyset pagination)
CREATE INDEX idx_messages_channel_created
ON messages (channel_id, created_at DESC, id DESC)
WHERE deleted_at IS NULL;

-- Author messages. Not partial (the design has WHERE deleted_at IS NULL):
-- a per-user export must also reach soft-deleted messages, and the
-- messages_fk_author check on user deletion needs every row.
CREATE INDEX idx_messages_author
ON messages (author_id, created_at DESC);

-- Full-text search
CREATE INDEX idx_messages_content_fts
ON messages USING gin (to_tsvector('simple', content))
WHERE content IS NOT NULL AND deleted_at IS NULL;

-- BRIN index for time-based queries
CREATE INDEX idx_messages_created_brin
ON messages USING brin (created_at);

-- Mentions search
CREATE INDEX idx_messages_mentions
ON messages USING gin (mentions)
WHERE deleted_at IS NULL;

-- 4.3 server members
-- List members of server
CREATE INDEX idx_server_members_server
ON server_members (server_id, joined_at);

-- List servers of user
CREATE INDEX idx_server_members_user
ON server_members (user_id);

-- Role assignments
CREATE INDEX idx_server_members_roles_role
ON server_members_roles (role_id);

-- 4.4 channels
-- Server channels
CREATE INDEX idx_channels_server_position
ON channels (server_id, position)
WHERE deleted_at IS NULL;

-- Category children
CREATE INDEX idx_channels_parent
ON channels (parent_id)
WHERE deleted_at IS NULL;

-- Not in the design: per-user rows and foreign-key support.
-- Servers owned by a user
CREATE INDEX idx_servers_owner
ON servers (owner_id);

-- Reactions of a user
CREATE INDEX idx_message_reactions_user
ON message_reactions (user_id);
-- (Reactions of a message: message_reactions_uk_reaction starts with
-- (message_id, message_created_at) and serves the foreign key to messages.)

-- Attachments of a message; serves the foreign key to messages
CREATE INDEX idx_attachments_message
ON attachments (message_id, message_created_at);

-- Audit entries by actor
CREATE INDEX idx_audit_logs_user
ON audit_logs (user_id);

-- A server's audit log, newest first; serves the foreign key to servers
CREATE INDEX idx_audit_logs_server_created
ON audit_logs (server_id, created_at DESC);

-- Invites created by / aimed at a user
CREATE INDEX idx_invites_inviter
ON invites (inviter_id);

CREATE INDEX idx_invites_target_user
ON invites (target_user_id);
