//! The queue in PostgreSQL, shared by several foreman replicas (ADR 23).
//!
//! Every replica runs the same operations against one database; PostgreSQL's row locks
//! and transactions are the only coordination. Claims take a target slot and a job with
//! `FOR UPDATE SKIP LOCKED`, so replicas never wait on each other's claims; each replica
//! keeps a row in `replicas` alive (its lease), and a replica whose lease has lapsed has
//! its running work taken over by whichever replica notices first.

mod ops;
mod samples;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{Result, StoreError, StoreOptions};

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
    options: Arc<StoreOptions>,
    /// This process's name in `replicas`, fresh at every start.
    replica: Arc<str>,
    /// How long a replica's claims outlive its last heartbeat (`FOREMAN_LEASE`).
    lease: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("replica", &self.replica)
            .field("lease", &self.lease)
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
            config,
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
            lease: options.lease,
            options: Arc::new(options),
            replica: Arc::from(format!("replica_{}", ulid::Ulid::new()).as_str()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A connection from the pool; an outage is [`StoreError::Unavailable`].
    pub(in crate::store) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(err.to_string()))
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

crate::store::forward_queue!(PgStore);
