DROP VIEW v_server_members_full;
DROP VIEW v_channels_with_stats;
DROP VIEW v_user_profiles;
