-- Fair share (ADR 14): every job belongs to a tenant (an API key, or a key and one of its
-- end users), and each tenant's weighted GPU time decides whose job goes next.

-- The tenant that submitted the job; '' for an open foreman (no keys, no token).
ALTER TABLE jobs ADD COLUMN tenant_key TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN tenant_user TEXT NOT NULL DEFAULT '';
-- When the current (or last) run started, Unix ms, and the GPU time of all its runs.
ALTER TABLE jobs ADD COLUMN started_at INTEGER;
ALTER TABLE jobs ADD COLUMN gpu_ms INTEGER NOT NULL DEFAULT 0;

-- One row per tenant that ever queued a job. `service` is settled weighted GPU time (ms
-- divided by weight, finished runs only); `queued` and `running` are kept by the triggers
-- below, so "is this tenant active" is one row read.
CREATE TABLE tenants (
    key_name TEXT NOT NULL,
    end_user TEXT NOT NULL,
    weight   INTEGER NOT NULL DEFAULT 1,
    service  REAL NOT NULL DEFAULT 0,
    queued   INTEGER NOT NULL DEFAULT 0,
    running  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_name, end_user)
) WITHOUT ROWID;
CREATE INDEX tenants_active ON tenants (service) WHERE queued > 0 OR running > 0;

-- The groups of queued jobs sharing a priority, a tenant and a model, with their sizes:
-- the scheduler reads each group's oldest job (its head) and nothing else of the queue.
CREATE TABLE queue_groups (
    priority    INTEGER NOT NULL,
    tenant_key  TEXT NOT NULL,
    tenant_user TEXT NOT NULL,
    model       TEXT NOT NULL,
    queued      INTEGER NOT NULL,
    PRIMARY KEY (priority, tenant_key, tenant_user, model)
) WITHOUT ROWID;
CREATE INDEX jobs_queue_group ON jobs (priority, tenant_key, tenant_user, model, id)
    WHERE state = 'queued';

-- Jobs queued before this migration belong to the open tenant.
INSERT INTO tenants (key_name, end_user, queued, running)
SELECT '', '',
       (SELECT count(*) FROM jobs WHERE state = 'queued'),
       (SELECT count(*) FROM jobs WHERE state IN ('loading', 'working'));
INSERT INTO queue_groups (priority, tenant_key, tenant_user, model, queued)
SELECT priority, '', '', model, count(*) FROM jobs WHERE state = 'queued'
GROUP BY priority, model;

-- A job enters its group when it is inserted queued or goes back to the queue, and leaves
-- it when it is claimed, ends or is deleted. Priority, model and tenant never change, so
-- OLD and NEW name the same group; `change` is +1 or -1.
CREATE TRIGGER jobs_group_insert AFTER INSERT ON jobs WHEN NEW.state = 'queued'
BEGIN
    INSERT INTO queue_groups (priority, tenant_key, tenant_user, model, queued)
    VALUES (NEW.priority, NEW.tenant_key, NEW.tenant_user, NEW.model, 1)
    ON CONFLICT (priority, tenant_key, tenant_user, model) DO UPDATE SET queued = queued + 1;
    UPDATE tenants SET queued = queued + 1
    WHERE key_name = NEW.tenant_key AND end_user = NEW.tenant_user;
END;

CREATE TRIGGER jobs_group_update AFTER UPDATE OF state ON jobs
WHEN (OLD.state = 'queued') != (NEW.state = 'queued')
BEGIN
    INSERT INTO queue_groups (priority, tenant_key, tenant_user, model, queued)
    VALUES (NEW.priority, NEW.tenant_key, NEW.tenant_user, NEW.model,
            CASE WHEN NEW.state = 'queued' THEN 1 ELSE -1 END)
    ON CONFLICT (priority, tenant_key, tenant_user, model)
    DO UPDATE SET queued = queued + excluded.queued;
    DELETE FROM queue_groups WHERE queued <= 0;
    UPDATE tenants SET queued = queued + CASE WHEN NEW.state = 'queued' THEN 1 ELSE -1 END
    WHERE key_name = NEW.tenant_key AND end_user = NEW.tenant_user;
END;

CREATE TRIGGER jobs_group_delete AFTER DELETE ON jobs WHEN OLD.state = 'queued'
BEGIN
    UPDATE queue_groups SET queued = queued - 1
    WHERE priority = OLD.priority AND tenant_key = OLD.tenant_key
      AND tenant_user = OLD.tenant_user AND model = OLD.model;
    DELETE FROM queue_groups WHERE queued <= 0;
    UPDATE tenants SET queued = queued - 1
    WHERE key_name = OLD.tenant_key AND end_user = OLD.tenant_user;
END;

-- `running` counts the jobs in `loading` or `working`.
CREATE TRIGGER jobs_running AFTER UPDATE OF state ON jobs
WHEN (OLD.state IN ('loading', 'working')) != (NEW.state IN ('loading', 'working'))
BEGIN
    UPDATE tenants
    SET running = running + CASE WHEN NEW.state IN ('loading', 'working') THEN 1 ELSE -1 END
    WHERE key_name = NEW.tenant_key AND end_user = NEW.tenant_user;
END;
