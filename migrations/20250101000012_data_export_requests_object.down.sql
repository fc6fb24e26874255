ALTER TABLE data_export_requests
    DROP CONSTRAINT data_export_requests_ck_download,
    DROP COLUMN download_expires_at,
    DROP COLUMN download_url,
    DROP COLUMN output_key;
