-- API keys and usage accounting (ADR 18).

-- One row per key. The secret itself is never stored: `hash` is the hex SHA-256 of it,
-- and `prefix` its first characters, shown in listings to tell keys apart.
CREATE TABLE api_keys (
    name              TEXT PRIMARY KEY,
    hash              TEXT NOT NULL UNIQUE,
    prefix            TEXT NOT NULL,
    admin             INTEGER NOT NULL DEFAULT 0,
    weight            INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    max_queued        INTEGER CHECK (max_queued IS NULL OR max_queued >= 0),
    rpm               INTEGER CHECK (rpm IS NULL OR rpm >= 0),
    trust_user_header INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
) WITHOUT ROWID;

-- What the target reported for a job's runs: tokens in and out.
ALTER TABLE jobs ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE jobs ADD COLUMN output_tokens INTEGER;

-- Usage per hour, key, end user and model, added to in the transaction that ends each
-- run. Jobs are pruned after FOREMAN_JOB_TTL; this table is not, so usage outlives them.
-- `hour` is the Unix millisecond at which the hour (UTC) began.
CREATE TABLE usage (
    hour          INTEGER NOT NULL,
    key_name      TEXT NOT NULL,
    end_user      TEXT NOT NULL,
    model         TEXT NOT NULL,
    requests      INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    gpu_ms        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, key_name, end_user, model)
) WITHOUT ROWID;
CREATE INDEX usage_by_key ON usage (key_name, hour);

-- The same, summed per key since the start: what GET /metrics reports, one row per key.
CREATE TABLE usage_totals (
    key_name      TEXT PRIMARY KEY,
    requests      INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    gpu_ms        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- A key's jobs, newest first, for GET /jobs as that key.
CREATE INDEX jobs_by_key ON jobs (tenant_key, id);
