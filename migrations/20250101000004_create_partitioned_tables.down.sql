DROP TABLE audit_logs;
DROP TABLE messages;
DROP FUNCTION drop_old_partitions(TEXT, INTEGER);
DROP FUNCTION ensure_future_partitions(TEXT, INTEGER);
DROP FUNCTION create_monthly_partition(TEXT, DATE);
