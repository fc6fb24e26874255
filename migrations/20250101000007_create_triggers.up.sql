-- Trigger functions and triggers (design section 6; the snowflake generator of
-- 6.1 is in the extensions migration because table defaults need it).

-- 6.2 updated_at
CREATE FUNCTION update_updated_at_column()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$;

-- Every table that has an updated_at column.
CREATE TRIGGER users_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER servers_updated_at
    BEFORE UPDATE ON servers
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER channels_updated_at
    BEFORE UPDATE ON channels
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER roles_updated_at
    BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER channel_permission_overwrites_updated_at
    BEFORE UPDATE ON channel_permission_overwrites
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER server_members_updated_at
    BEFORE UPDATE ON server_members
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- 6.3 audit log. Defined but attached to no table: attaching it would make
-- every insert, including bulk loads and restores, write audit rows. To use
-- it on a table:
--   CREATE TRIGGER <t>_audit AFTER INSERT OR UPDATE OR DELETE ON <t>
--       FOR EACH ROW EXECUTE FUNCTION log_audit_event();       -- table with server_id
--   ... EXECUTE FUNCTION log_audit_event('id');                -- on servers itself
-- The argument names the column holding the server id (default server_id).
-- Rows without a server (DM channels) or whose server no longer exists (the
-- server is being deleted) are not logged: audit_logs.server_id is NOT NULL
-- and references servers. target_id is the row's id, else its user_id
-- (server_members). Never attach it to audit_logs.
CREATE FUNCTION log_audit_event()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
DECLARE
    server_column TEXT := COALESCE(TG_ARGV[0], 'server_id');
    row_data JSONB;
    v_changes JSONB;
    v_action_type SMALLINT;
    v_server_id BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_action_type := 1; -- Create
        row_data := to_jsonb(NEW);
        v_changes := row_data;
    ELSIF TG_OP = 'UPDATE' THEN
        v_action_type := 2; -- Update
        row_data := to_jsonb(NEW);
        v_changes := jsonb_build_object(
            'old', to_jsonb(OLD),
            'new', row_data
        );
    ELSIF TG_OP = 'DELETE' THEN
        v_action_type := 3; -- Delete
        row_data := to_jsonb(OLD);
        v_changes := row_data;
    END IF;

    v_server_id := (row_data ->> server_column)::BIGINT;

    IF v_server_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM servers WHERE id = v_server_id) THEN
        INSERT INTO audit_logs (
            server_id,
            action_type,
            target_id,
            target_type,
            changes
        ) VALUES (
            v_server_id,
            v_action_type,
            COALESCE((row_data ->> 'id')::BIGINT, (row_data ->> 'user_id')::BIGINT),
            TG_TABLE_NAME,
            v_changes
        );
    END IF;

    RETURN COALESCE(NEW, OLD);
END;
$$;

-- 6.4 member count (servers.member_count)
CREATE FUNCTION update_server_member_count()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE servers
        SET member_count = member_count + 1
        WHERE id = NEW.server_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE servers
        SET member_count = member_count - 1
        WHERE id = OLD.server_id;
    END IF;

    RETURN COALESCE(NEW, OLD);
END;
$$;

CREATE TRIGGER server_members_count
    AFTER INSERT OR DELETE ON server_members
    FOR EACH ROW
    EXECUTE FUNCTION update_server_member_count();
