//! The durable queue, in SQLite.
//!
//! [`Store`] is the one narrow interface the rest of the server uses: each method is a
//! queue operation (enqueue, claim the next job, move a job between states, read jobs and
//! artifacts, work the webhook outbox). A PostgreSQL backend would implement these same
//! operations; nothing outside this module writes SQL.
//!
//! Writes go to one connection owned by one thread ([`writer`]). It takes every operation
//! that is waiting, runs them in one `BEGIN IMMEDIATE` transaction (each inside its own
//! savepoint, so one failing operation does not undo the others), commits, and only then
//! answers each caller: a caller told "done" has been committed, and a burst of enqueues
//! shares one fsync (group commit). Reads run on a small pool of connections on tokio's
//! blocking threads, concurrently with the writer (WAL).

mod artifacts;
mod claim;
mod enqueue;
mod events;
mod fair_share;
mod jobs_read;
mod keys;
mod outbox;
mod recover;
mod samples;
mod stats;
mod tenant_limit;
mod transition;
mod usage;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod usage_tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub(crate) use artifacts::NewArtifact;
pub(crate) use claim::{ClaimRequest, ClaimedJob};
pub(crate) use enqueue::{Enqueued, NewJob, Origin};
pub(crate) use jobs_read::JobFilter;
pub(crate) use outbox::{Delivery, DeliveryOutcome};
pub(crate) use recover::Recovered;
pub(crate) use transition::Finish;
pub(crate) use usage::{KeyTotals, Reported, UsageFilter};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The queue already holds `FOREMAN_MAX_QUEUE` jobs.
    #[error("the queue is full")]
    QueueFull,
    /// The writer thread is gone (the server is shutting down).
    #[error("the database writer has stopped")]
    WriterGone,
    /// A stored value could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A blocking read task panicked or was cancelled.
    #[error("database read task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Same idempotency key, different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// A key of that name exists already.
    #[error("a key named {0:?} exists already")]
    KeyExists(String),
    /// The change would leave no admin key, and no `FOREMAN_AUTH_TOKEN` to fall back on.
    #[error("no admin key would be left")]
    NoAdminLeft,
    /// The tenant already has its key's `max_queued` jobs queued.
    #[error("the key already has {0} jobs queued, its limit")]
    TenantQueueFull(u32),
}

/// Result of a store operation.
pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Options fixed when the store opens.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    /// Base URL for artifact links in webhook bodies (`http://host:port`).
    pub public_url: String,
    /// Jobs beyond this many queued are refused.
    pub max_queue: u64,
}

/// A handle to the queue; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    writer: writer::WriterHandle,
    readers: Arc<ReaderPool>,
    options: Arc<StoreOptions>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `path` and starts its
    /// writer thread.
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<Self> {
        let conn = open_connection(path)?;
        migrate(&conn)?;
        let writer = writer::spawn(conn)?;
        Ok(Self {
            writer,
            readers: Arc::new(ReaderPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            options: Arc::new(options),
        })
    }

    /// Runs `f` on a read connection, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let out = f(&conn);
            pool.give_back(conn);
            out
        })
        .await?
    }

    /// Runs `f` in the writer's next transaction and waits for the commit.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.run(f).await
    }
}

/// Read connections, opened on demand and kept for reuse.
#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 8 {
                idle.push(conn);
            }
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL lets readers run beside the writer. synchronous=FULL makes every commit durable
    // across power loss, not only across a process crash (docs/adr/0004).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The schema, one embedded SQL file per version; `user_version` records how far a
/// database has come.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_jobs.sql"),
    include_str!("../../migrations/0002_fair_share.sql"),
    include_str!("../../migrations/0003_keys.sql"),
    include_str!("../../migrations/0004_ui_samples.sql"),
];

fn migrate(conn: &Connection) -> Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {version}, newer than this foreman knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let next = index + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {next}; COMMIT;"
        ))?;
        tracing::info!(version = next, "applied database migration");
    }
    Ok(())
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A store on a fresh temporary file; keep the directory alive while using it.
    pub(crate) fn temp_store(max_queue: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(
            &dir.path().join("foreman.db"),
            StoreOptions {
                public_url: "http://127.0.0.1:8080".into(),
                max_queue,
            },
        )
        .expect("store opens");
        (dir, store)
    }
}
