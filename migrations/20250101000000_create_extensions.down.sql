DROP FUNCTION generate_snowflake_id();
DROP SEQUENCE snowflake_seq;
DROP EXTENSION pg_trgm;
