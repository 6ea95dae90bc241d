//! The queue in SQLite, the embedded default.
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

use writer::Durable;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::{now_ms, Result, StoreError, StoreOptions};

/// The queue in one SQLite file; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    writer: writer::WriterHandle,
    readers: Arc<ReaderPool>,
    options: Arc<StoreOptions>,
    /// Each tenant's requests in the last minute, for its key's `rpm`.
    rate: Arc<crate::rate::RateLimiter>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path` and starts its
    /// writer thread.
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<Self> {
        let conn = open_connection(path)?;
        // A statement that fires triggers inside the batch's transaction keeps a statement
        // journal (the pages it changed, to undo it alone), and a claim's or an end's
        // journal, some fifteen pages, passes SQLite's 64 KiB limit for keeping it in
        // memory: each such statement then created, wrote and deleted a temporary file,
        // about 0.1 ms (issue 16's profile). In memory, whatever its size.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        migrate(&conn)?;
        let writer = writer::spawn(conn, open_connection(path)?, path.to_owned())?;
        Ok(Self {
            writer,
            readers: Arc::new(ReaderPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            options: Arc::new(options),
            rate: Arc::default(),
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

    /// Runs `f` in the writer's next transaction and waits until the commit is on the
    /// disk.
    pub(in crate::store) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.writer
            .run(move |tx| f(tx).map(|value| (value, Durable::Disk)))
            .await
    }

    /// Runs `f` in the writer's next transaction and waits for the commit, which `f`
    /// says must reach the disk or only survive a crash of this process (ADR 24).
    async fn write_deciding<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Durable)> + Send + 'static,
    {
        self.writer.run(f).await
    }
}

/// Runs `f` inside a savepoint of `tx`: when it fails, what it wrote is undone and the
/// rest of the transaction stands. The statements are cached, so a savepoint costs no
/// parsing. Savepoints nest: each `RELEASE` or `ROLLBACK TO` finds the innermost `op`.
pub(super) fn within_savepoint<T>(
    tx: &rusqlite::Transaction<'_>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut st| st.execute([]));
    run("SAVEPOINT op")?;
    let outcome = f();
    let closed = if outcome.is_ok() {
        run("RELEASE op")
    } else {
        run("ROLLBACK TO op").and_then(|_| run("RELEASE op"))
    };
    match (outcome, closed) {
        (Ok(value), Ok(_)) => Ok(value),
        (Err(err), _) => Err(err),
        (Ok(_), Err(err)) => Err(err.into()),
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
    // WAL lets readers run beside the writer. synchronous=NORMAL: a commit survives a
    // crash of this process; the writer syncs the WAL itself after the commits that must
    // also survive power loss (ADR 4, ADR 24).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement on the hot path is a cached one, and a sync job's life passes
    // about thirty: rusqlite's default of 16 would evict each before its next use and
    // recompile all of them every time (issue 16's profile).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 256;

/// The schema, one embedded SQL file per version; `user_version` records how far a
/// database has come.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_jobs.sql"),
    include_str!("../../../migrations/sqlite/0002_fair_share.sql"),
    include_str!("../../../migrations/sqlite/0003_keys.sql"),
    include_str!("../../../migrations/sqlite/0004_ui_samples.sql"),
    include_str!("../../../migrations/sqlite/0005_drop_target_queue_indexes.sql"),
];

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
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

/// One process owns a SQLite file: no replicas to keep up with or take over from, and
/// its rate windows are in its memory.
impl SqliteStore {
    async fn keep_alive(
        &self,
        _max_attempts: u32,
        _running: Vec<foreman_types::JobId>,
    ) -> Result<super::Recovered> {
        Ok(super::Recovered::default())
    }

    fn watch(&self, _wakers: super::Wakers, _shutdown: tokio_util::sync::CancellationToken) {}

    fn is_shared(&self) -> bool {
        false
    }

    fn may_have_queued(&self) -> bool {
        self.writer.may_have_queued()
    }

    async fn admit(
        &self,
        tenant: crate::scheduler::Tenant,
        rpm: u32,
    ) -> Result<Result<(), std::time::Duration>> {
        Ok(self.rate.admit(&tenant, rpm, std::time::Instant::now()))
    }
}

crate::store::forward_queue!(SqliteStore, one_transaction);

#[cfg(test)]
mod tests;
