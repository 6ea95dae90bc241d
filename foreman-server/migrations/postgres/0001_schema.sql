-- The durable queue on PostgreSQL, shared by every foreman replica (ADR 23): SQLite's
-- schema (migrations/sqlite/0001–0003) in one file, plus what replicas need to share it
-- (their leases, the target slots, who owns which job, outbox claims, the rate log).
-- Times are Unix milliseconds; ids are ULIDs, so `ORDER BY id` is submission order.
-- Ids and the names listings sort by compare byte-wise (COLLATE "C"), as SQLite does,
-- whatever the database's locale.

-- Now, by the database's clock: leases and the rate log are compared by one clock,
-- however the replicas' clocks drift.
CREATE FUNCTION foreman_now_ms() RETURNS BIGINT LANGUAGE SQL VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
$$;

CREATE TABLE jobs (
    id              TEXT COLLATE "C" PRIMARY KEY,
    kind            TEXT NOT NULL,                 -- chat | generate
    origin          TEXT NOT NULL,                 -- sync (/api/*) | async (POST /jobs)
    target          TEXT NOT NULL,                 -- which Ollama host runs it ('' queued)
    model           TEXT COLLATE "C" NOT NULL,     -- normalised: name:tag
    priority        INTEGER NOT NULL DEFAULT 0,    -- higher runs sooner
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,    -- times a worker started it
    payload         BYTEA NOT NULL,                -- the request body, byte for byte
    webhook_url     TEXT,
    idempotency_key TEXT,
    request_hash    TEXT,
    error           TEXT,
    result          BYTEA,                         -- the final Ollama response (JSON)
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    -- The tenant that submitted it (ADR 14); '' for an open foreman.
    tenant_key      TEXT NOT NULL DEFAULT '',
    tenant_user     TEXT NOT NULL DEFAULT '',
    -- When the current (or last) run started, and the GPU time of all its runs.
    started_at      BIGINT,
    gpu_ms          BIGINT NOT NULL DEFAULT 0,
    -- What the target reported for its runs (ADR 18).
    prompt_tokens   BIGINT,
    output_tokens   BIGINT,
    -- The replica that holds the caller's connection (a sync job, from its enqueue) or
    -- runs the job (any job, from its claim). Only that replica claims a sync job.
    owner           TEXT
);

-- Start-up recovery, rescue and the running jobs.
CREATE INDEX jobs_running ON jobs (state) WHERE state IN ('loading', 'working');
-- A replica's work, for the rescue when it dies.
CREATE INDEX jobs_by_owner ON jobs (owner) WHERE state IN ('queued', 'loading', 'working');
-- The TTL pruner.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('done', 'failed', 'cancelled');
-- Listing by state, model or key, newest first.
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_model ON jobs (model, id);
CREATE INDEX jobs_by_key ON jobs (tenant_key, id);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The scheduler reads each group's oldest job (its head) and nothing else of the queue.
CREATE INDEX jobs_queue_group ON jobs (priority, tenant_key, tenant_user, model, id)
    WHERE state = 'queued';

-- Queue depth kept by the trigger below, so admission control (FOREMAN_MAX_QUEUE) is one
-- row read; enqueue locks the row, so replicas admitting at once cannot overshoot it.
CREATE TABLE queue_depth (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    queued BIGINT NOT NULL
);
INSERT INTO queue_depth (id, queued) VALUES (1, 0);

-- One row per tenant that ever queued a job. `service` is settled weighted GPU time (ms
-- divided by weight, finished runs only); `queued` and `running` are kept by the trigger.
CREATE TABLE tenants (
    key_name TEXT NOT NULL,
    end_user TEXT NOT NULL,
    weight   INTEGER NOT NULL DEFAULT 1,
    service  DOUBLE PRECISION NOT NULL DEFAULT 0,
    queued   INTEGER NOT NULL DEFAULT 0,
    running  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_name, end_user)
);
CREATE INDEX tenants_active ON tenants (service) WHERE queued > 0 OR running > 0;

-- The groups of queued jobs sharing a priority, a tenant and a model, with their sizes.
CREATE TABLE queue_groups (
    priority    INTEGER NOT NULL,
    tenant_key  TEXT NOT NULL,
    tenant_user TEXT NOT NULL,
    model       TEXT NOT NULL,
    queued      INTEGER NOT NULL,
    PRIMARY KEY (priority, tenant_key, tenant_user, model)
);

-- Keeps queue_depth, queue_groups and tenants.queued/running in step with the jobs, as
-- SQLite's triggers do: a job is in its group while queued, and running while loading or
-- working. Priority, model and tenant never change, so OLD and NEW name the same group.
-- One function, so the rows it locks are always taken in one order (depth, group,
-- tenant) and two transactions cannot deadlock on them.
CREATE FUNCTION jobs_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    queued_change  INTEGER := 0;
    running_change INTEGER := 0;
    job            jobs;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        job := OLD;
        IF OLD.state = 'queued' THEN
            queued_change := queued_change - 1;
        ELSIF OLD.state IN ('loading', 'working') THEN
            running_change := running_change - 1;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        job := NEW;
        IF NEW.state = 'queued' THEN
            queued_change := queued_change + 1;
        ELSIF NEW.state IN ('loading', 'working') THEN
            running_change := running_change + 1;
        END IF;
    END IF;
    IF queued_change <> 0 THEN
        UPDATE queue_depth SET queued = queued + queued_change WHERE id = 1;
        INSERT INTO queue_groups AS g (priority, tenant_key, tenant_user, model, queued)
        VALUES (job.priority, job.tenant_key, job.tenant_user, job.model, queued_change)
        ON CONFLICT (priority, tenant_key, tenant_user, model)
        DO UPDATE SET queued = g.queued + excluded.queued;
        DELETE FROM queue_groups g
        WHERE g.priority = job.priority AND g.tenant_key = job.tenant_key
          AND g.tenant_user = job.tenant_user AND g.model = job.model AND g.queued <= 0;
    END IF;
    IF queued_change <> 0 OR running_change <> 0 THEN
        UPDATE tenants t
        SET queued = t.queued + queued_change, running = t.running + running_change
        WHERE t.key_name = job.tenant_key AND t.end_user = job.tenant_user;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_counts AFTER INSERT OR DELETE OR UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_counts();

CREATE TABLE artifacts (
    job_id       TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (job_id, name)
);

-- The webhook outbox: one row per state change of a job with a webhook, written in the
-- same transaction as the change. A replica delivering a row claims it (`claimed_by`,
-- until `claim_expires_at`), so two replicas never deliver one event at once.
CREATE TABLE webhook_outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       TEXT NOT NULL UNIQUE,          -- stable across retries
    job_id           TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    state            TEXT NOT NULL,
    url              TEXT NOT NULL,
    body             BYTEA NOT NULL,
    timestamp        BIGINT NOT NULL,               -- Unix seconds of the state change
    status           TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claimed_by       TEXT,
    claim_expires_at BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_outbox_by_job ON webhook_outbox (job_id, id);
CREATE INDEX webhook_outbox_claims ON webhook_outbox (claimed_by) WHERE claimed_by IS NOT NULL;

CREATE TABLE webhook_attempts (
    outbox_id  BIGINT NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    status     INTEGER,
    latency_ms BIGINT NOT NULL,
    error      TEXT,
    at         BIGINT NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);

-- API keys (ADR 18): `hash` is the hex SHA-256 of the secret, `prefix` its first
-- characters; the secret itself is never stored.
CREATE TABLE api_keys (
    name              TEXT COLLATE "C" PRIMARY KEY,
    hash              TEXT NOT NULL UNIQUE,
    prefix            TEXT NOT NULL,
    admin             BOOLEAN NOT NULL DEFAULT FALSE,
    weight            INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    max_queued        INTEGER CHECK (max_queued IS NULL OR max_queued >= 0),
    rpm               INTEGER CHECK (rpm IS NULL OR rpm >= 0),
    trust_user_header BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        BIGINT NOT NULL
);

-- Usage per hour (the Unix ms at which the UTC hour began), key, end user and model,
-- added to in the transaction that ends each run; kept when the jobs are pruned.
CREATE TABLE usage (
    hour          BIGINT NOT NULL,
    key_name      TEXT COLLATE "C" NOT NULL,
    end_user      TEXT COLLATE "C" NOT NULL,
    model         TEXT COLLATE "C" NOT NULL,
    requests      BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    gpu_ms        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, key_name, end_user, model)
);
CREATE INDEX usage_by_key ON usage (key_name, hour);

-- The same, summed per key since the start: what GET /metrics reports.
CREATE TABLE usage_totals (
    key_name      TEXT COLLATE "C" PRIMARY KEY,
    requests      BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    gpu_ms        BIGINT NOT NULL DEFAULT 0
);

-- Each live replica's lease, renewed by its heartbeat (foreman_now_ms() + FOREMAN_LEASE).
-- A row past its expiry belongs to a dead replica: the first live replica to lock it
-- takes over its work and deletes it.
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- The generation slots of every target (0 .. its parallelism), shared by the replicas: a
-- claim takes a free one (no holder, or a holder whose lease lapsed) with the job, so a
-- target never runs more than its parallelism, whichever replicas run it.
CREATE TABLE target_slots (
    target TEXT NOT NULL,
    slot   INTEGER NOT NULL,
    holder TEXT,
    job_id TEXT COLLATE "C",
    PRIMARY KEY (target, slot)
);
CREATE INDEX target_slots_by_job ON target_slots (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX target_slots_by_holder ON target_slots (holder) WHERE holder IS NOT NULL;

-- Requests per minute shared by the replicas: each tenant's admitted requests of the last
-- minute (a sliding log, as crate::rate keeps in memory with one replica).
CREATE TABLE rate_log (
    tenant_key  TEXT NOT NULL,
    tenant_user TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
CREATE INDEX rate_log_by_tenant ON rate_log (tenant_key, tenant_user, at_ms);
