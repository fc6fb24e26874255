-- Export packages delivered to object storage (`pgvault export-worker
-- --output s3://BUCKET/PREFIX`, docs/export-format.md, "Request queue"):
-- output_path then holds s3://BUCKET/KEY and these columns say how the
-- service hands the package to its user. NULL for packages in a folder.
ALTER TABLE data_export_requests
    -- The object's key in the bucket (PREFIX/user-<uid>-request-<id>.zip).
    ADD COLUMN output_key TEXT,
    -- With --presign: a pre-signed GET link (SigV4 query signing) that
    -- downloads the package without credentials until download_expires_at.
    -- It is a bearer token for the user's data: mail it, do not log it.
    ADD COLUMN download_url TEXT,
    ADD COLUMN download_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT data_export_requests_ck_download CHECK (
        (download_url IS NULL) = (download_expires_at IS NULL)
    );
