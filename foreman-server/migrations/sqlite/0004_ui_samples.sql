-- The status page's last hour of queue samples (its plots), so a restart does not blank
-- them. One row: `body` is the samples as JSON, written whole every minute and at
-- shutdown; `saved_at` is when, in Unix milliseconds.
CREATE TABLE ui_samples (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    body     TEXT NOT NULL,
    saved_at INTEGER NOT NULL
);
