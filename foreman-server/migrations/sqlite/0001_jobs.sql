-- The durable queue. Times are Unix milliseconds; ids are ULIDs, so `ORDER BY id` is
-- submission order.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,                 -- chat | generate
    origin          TEXT NOT NULL,                 -- sync (/api/*) | async (POST /jobs)
    target          TEXT NOT NULL,                 -- which Ollama host runs it
    model           TEXT NOT NULL,                 -- normalised: name:tag
    priority        INTEGER NOT NULL DEFAULT 0,    -- higher runs sooner
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,    -- times the worker started it
    payload         BLOB NOT NULL,                 -- the request body, byte for byte
    webhook_url     TEXT,
    idempotency_key TEXT,
    request_hash    TEXT,
    error           TEXT,
    result          BLOB,                          -- the final Ollama response (JSON)
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Queue selection: the oldest job of the highest priority, optionally of one model.
CREATE INDEX jobs_queue ON jobs (target, priority DESC, id) WHERE state = 'queued';
CREATE INDEX jobs_queue_by_model ON jobs (target, model, priority DESC, id) WHERE state = 'queued';
-- Start-up recovery and the running job.
CREATE INDEX jobs_running ON jobs (state) WHERE state IN ('loading', 'working');
-- The TTL pruner.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('done', 'failed', 'cancelled');
-- Listing by state or model, newest first.
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_model ON jobs (model, id);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Queue depth kept by triggers, so admission control (FOREMAN_MAX_QUEUE) is one row read
-- rather than a count over the queue.
CREATE TABLE queue_depth (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    queued INTEGER NOT NULL
);
INSERT INTO queue_depth (id, queued) VALUES (1, 0);

CREATE TRIGGER jobs_depth_insert AFTER INSERT ON jobs WHEN NEW.state = 'queued'
BEGIN
    UPDATE queue_depth SET queued = queued + 1 WHERE id = 1;
END;

CREATE TRIGGER jobs_depth_update AFTER UPDATE OF state ON jobs
WHEN (OLD.state = 'queued') != (NEW.state = 'queued')
BEGIN
    UPDATE queue_depth
    SET queued = queued + (CASE WHEN NEW.state = 'queued' THEN 1 ELSE -1 END)
    WHERE id = 1;
END;

CREATE TRIGGER jobs_depth_delete AFTER DELETE ON jobs WHEN OLD.state = 'queued'
BEGIN
    UPDATE queue_depth SET queued = queued - 1 WHERE id = 1;
END;

CREATE TABLE artifacts (
    job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;

-- The webhook outbox: one row per state change of a job with a webhook, written in the
-- same transaction as the change, so a crash between the two loses nothing.
CREATE TABLE webhook_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      TEXT NOT NULL UNIQUE,          -- stable across retries
    job_id          TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    url             TEXT NOT NULL,
    body            BLOB NOT NULL,
    timestamp       INTEGER NOT NULL,              -- Unix seconds of the state change
    status          TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_outbox_by_job ON webhook_outbox (job_id, id);

CREATE TABLE webhook_attempts (
    outbox_id  INTEGER NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    status     INTEGER,
    latency_ms INTEGER NOT NULL,
    error      TEXT,
    at         INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
) WITHOUT ROWID;
