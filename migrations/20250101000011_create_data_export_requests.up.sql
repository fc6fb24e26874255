-- The queue of per-user data export requests ("download my data"), worked by
-- `pgvault export-worker` (docs/export-format.md, "Request queue").
--
-- Life of a request:
--   pending --claim--> running --success--> done
--                        |  \--failure, attempts < max_attempts--> pending
--                        |  \--failure, attempts = max_attempts--> failed
--                        \--lease expired (worker died)--> pending (or failed)
-- A worker claims with FOR UPDATE SKIP LOCKED, so workers on any number of
-- machines share the queue without ever taking the same request; each claim
-- counts one attempt. While it exports, the worker extends lease_expires_at; a
-- request whose lease ran out is taken back by the next worker that looks.
CREATE TABLE data_export_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,

    -- Whose data. A request goes with its user.
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,

    requested_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    status TEXT NOT NULL DEFAULT 'pending'
        CONSTRAINT data_export_requests_ck_status
            CHECK (status IN ('pending', 'running', 'done', 'failed')),

    -- Claims so far (each claim is one attempt), and how many are allowed.
    attempts INTEGER NOT NULL DEFAULT 0
        CONSTRAINT data_export_requests_ck_attempts CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 3
        CONSTRAINT data_export_requests_ck_max_attempts CHECK (max_attempts >= 1),

    -- The worker of the latest claim ("host:pid"), when it claimed, and until
    -- when the claim holds unless renewed.
    claimed_by TEXT,
    claimed_at TIMESTAMPTZ,
    lease_expires_at TIMESTAMPTZ,

    -- The finished package.
    completed_at TIMESTAMPTZ,
    output_path TEXT,
    output_bytes BIGINT,
    output_sha256 TEXT
        CONSTRAINT data_export_requests_ck_sha256
            CHECK (output_sha256 ~ '^[0-9a-f]{64}$'),

    -- Why the latest attempt failed (kept after a later success, for the record).
    last_error TEXT,

    CONSTRAINT data_export_requests_ck_running CHECK (
        status <> 'running' OR (claimed_by IS NOT NULL AND lease_expires_at IS NOT NULL)
    ),
    CONSTRAINT data_export_requests_ck_done CHECK (
        status <> 'done' OR (completed_at IS NOT NULL AND output_path IS NOT NULL
                             AND output_bytes IS NOT NULL AND output_sha256 IS NOT NULL)
    )
);

-- The queue itself: open requests, oldest first (claiming and taking back
-- expired leases). Finished requests stay out of it, however many pile up.
CREATE INDEX idx_data_export_requests_queue
ON data_export_requests (status, requested_at)
WHERE status IN ('pending', 'running');

-- A user's requests; serves the foreign key to users on delete.
CREATE INDEX idx_data_export_requests_user
ON data_export_requests (user_id);
