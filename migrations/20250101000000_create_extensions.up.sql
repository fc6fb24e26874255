-- Extensions and the snowflake id generator.
-- generate_snowflake_id() is the column DEFAULT of most tables, so it (and its
-- sequence) must exist before any CREATE TABLE; the design document lists it in
-- section 6 only.
-- gen_random_uuid() is built in since PostgreSQL 13: no pgcrypto / uuid-ossp.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE SEQUENCE snowflake_seq;

-- 64-bit id: 41 bits of milliseconds since 2024-01-01 UTC, 10 bits worker, 12 bits sequence.
CREATE FUNCTION generate_snowflake_id()
RETURNS BIGINT
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE  -- reads the clock and calls nextval()
AS $$
DECLARE
    epoch BIGINT := 1704067200000; -- 2024-01-01 00:00:00 UTC
    current_ms BIGINT;
    worker_id INTEGER := 1;
    sequence_id BIGINT;
BEGIN
    current_ms := (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
    sequence_id := nextval('snowflake_seq') % 4096;

    RETURN ((current_ms - epoch) << 22) |
           ((worker_id % 1024) << 12) |
           sequence_id;
END;
$$;
