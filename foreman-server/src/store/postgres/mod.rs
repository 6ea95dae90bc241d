//! The queue in PostgreSQL, shared by several foreman replicas (ADR 23).
//!
//! Every replica runs the same operations against one database; PostgreSQL's row locks
//! and transactions are the only coordination. Claims take a target slot and a job with
//! `FOR UPDATE SKIP LOCKED`, so replicas never wait on each other's claims; each replica
//! keeps a row in `replicas` alive (its lease), and a replica whose lease has lapsed has
//! its running work taken over by whichever replica notices first ([`replicas`]).
//! Enqueues and freed slots `NOTIFY foreman_work`, key changes `NOTIFY foreman_keys`, and
//! [`watch`] turns the notifications into wake-ups.
//!
//! The rows a write locks are always taken in one order, so two transactions cannot
//! deadlock on them: the replica's row, the target slots, the jobs, then `queue_depth`,
//! `queue_groups` and `tenants` (the last three in the jobs trigger). A claim takes a slot
//! before its job, so does the end of a run, and so does a rescue.

mod artifacts;
mod claim;
mod enqueue;
mod events;
mod fair_share;
mod jobs_read;
mod keys;
mod outbox;
mod rate;
mod recover;
mod replicas;
mod samples;
mod stats;
mod transition;
mod usage;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{Result, StoreError, StoreOptions};

/// A transaction on a pooled connection.
type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// The schema, one embedded SQL file per version; `schema_version` records how far a
/// database has come.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_schema.sql"),
    include_str!("../../../migrations/postgres/0002_ui_samples.sql"),
];

/// The queue in one PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: Pool,
    /// For the connection [`watch`] listens on, outside the pool.
    config: Arc<tokio_postgres::Config>,
    options: Arc<StoreOptions>,
    /// This process's name in `replicas`, fresh at every start.
    replica: Arc<str>,
    /// The targets (and parallelism) whose slot rows this process has made sure exist.
    slotted: Arc<Mutex<HashSet<(String, u32)>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("replica", &self.replica)
            .field("lease", &self.options.lease)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url`, migrates the schema and registers this replica.
    pub(crate) async fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Unavailable(format!("bad FOREMAN_DB_URL: {err}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let store = Self {
            pool,
            config: Arc::new(config),
            options: Arc::new(options),
            replica: Arc::from(format!("replica_{}", ulid::Ulid::new()).as_str()),
            slotted: Arc::default(),
        };
        store.migrate().await?;
        store.heartbeat().await?;
        Ok(store)
    }

    /// A connection from the pool; an outage is [`StoreError::Unavailable`].
    pub(in crate::store) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))
    }

    /// This replica's id, as `replicas`, `jobs.owner` and the slots name it.
    #[cfg(test)]
    pub(in crate::store) fn replica(&self) -> &str {
        &self.replica
    }

    /// Several replicas may share this queue.
    pub(crate) fn is_shared(&self) -> bool {
        true
    }

    /// Another replica may have queued a job a moment ago: always maybe.
    pub(crate) fn may_have_queued(&self) -> bool {
        true
    }

    /// Holds this replica's row (shared) for the rest of `tx` while its lease is live:
    /// a rescue of this replica then waits (it skips the row) until `tx` ends, so what
    /// `tx` gives this replica cannot slip past a rescue. `false` when the lease has
    /// lapsed.
    async fn hold_lease(&self, tx: &Tx<'_>) -> Result<bool> {
        let me: &str = &self.replica;
        Ok(query_opt_cached(
            tx,
            "SELECT 1 FROM replicas WHERE id = $1 AND expires_at >= foreman_now_ms()
                 FOR SHARE",
            &[&me],
        )
        .await?
        .is_some())
    }

    /// How long a claim on a webhook delivery lasts: the lease, plus the longest attempt.
    fn delivery_claim_ms(&self) -> i64 {
        let claim = self
            .options
            .lease
            .saturating_add(self.options.webhook_timeout);
        i64::try_from(claim.as_millis()).unwrap_or(i64::MAX)
    }

    /// The lease (`FOREMAN_LEASE`, how long a replica's claims outlive its last
    /// heartbeat) in milliseconds, as the database's times count.
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.options.lease.as_millis()).unwrap_or(i64::MAX)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One migrating replica at a time; the others wait here, then find nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock(7212026)", &[])
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .await?;
        let version: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT FROM schema_version",
                &[],
            )
            .await?
            .get(0);
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "the database is at schema version {version}, newer than this foreman knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.batch_execute(sql).await?;
            let next = i32::try_from(index + 1).unwrap_or(i32::MAX);
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&next])
                .await?;
            tracing::info!(version = next, "applied database migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Whether `err` says the database could not be reached or the connection was lost,
/// rather than that it refused a statement: the connection is closed, the error comes
/// from the socket (an I/O error in its causes), or its SQL state is a connection
/// exception (class 08), an operator's shutdown (57P01–57P03) or too many connections.
/// Other errors without a state (a row that does not decode, a wrong column) are bugs,
/// not outages: they answer 500, not "try again".
pub(in crate::store) fn is_outage(err: &tokio_postgres::Error) -> bool {
    let Some(code) = err.code() else {
        return err.is_closed() || from_the_socket(err);
    };
    err.is_closed()
        || code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code)
}

/// Whether an I/O error is among `err`'s causes.
fn from_the_socket(err: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        if inner.is::<std::io::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// What went wrong, with the cause tokio-postgres keeps apart from its one-word summary
/// (the server's message, or the I/O error).
pub(in crate::store) fn detail(err: &tokio_postgres::Error) -> String {
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

// Every statement the store runs more than once goes through the connection's statement
// cache: PostgreSQL parses and plans it once per connection, not at every call. These
// four run `sql` that way; `db` is a pooled connection or a transaction on one.

/// A statement's parameters, `$1` first.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs `sql` (cached) and says how many rows it changed.
async fn execute_cached(db: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64> {
    Ok(db.execute(&db.prepare_cached(sql).await?, params).await?)
}

/// Runs the query `sql` (cached): every row.
async fn query_cached(db: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    Ok(db.query(&db.prepare_cached(sql).await?, params).await?)
}

/// Runs the query `sql` (cached): its one row, if any.
async fn query_opt_cached(
    db: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    Ok(db.query_opt(&db.prepare_cached(sql).await?, params).await?)
}

/// Runs the query `sql` (cached): its one row, which must be there.
async fn query_one_cached(db: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row> {
    Ok(db.query_one(&db.prepare_cached(sql).await?, params).await?)
}

/// A count stored as INTEGER, as the API counts it.
fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A count or limit for an INTEGER column.
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

crate::store::forward_queue!(PgStore);
