//! The conformance suite's backends: every test of the queue's rules runs once on a fresh
//! SQLite file and once on a fresh PostgreSQL database, through the same [`Queue`] calls.
//!
//! The PostgreSQL half needs a server: `FOREMAN_TEST_PG_URL` names a role that may create
//! databases (`scripts/test.sh` starts a throwaway cluster and sets it). Each test gets a
//! database of its own ([`foreman_testkit::postgres::fresh_database`]).

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{Store, StoreOptions};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A store under test, and a way to look behind it.
pub(crate) struct Harness {
    db: Db,
    _dir: Option<tempfile::TempDir>,
}

enum Db {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

pub(super) fn options(max_queue: u64) -> StoreOptions {
    StoreOptions {
        public_url: "http://127.0.0.1:8080".into(),
        max_queue,
        lease: std::time::Duration::from_secs(30),
        webhook_timeout: std::time::Duration::from_secs(10),
    }
}

impl Backend {
    /// A fresh, empty store of this kind.
    pub(crate) async fn open(self, max_queue: u64) -> (Harness, Store) {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = SqliteStore::open(&dir.path().join("foreman.db"), options(max_queue))
                    .expect("the SQLite store opens");
                let harness = Harness {
                    db: Db::Sqlite(store.clone()),
                    _dir: Some(dir),
                };
                (harness, Store::new(store))
            }
            Backend::Postgres => {
                let url = foreman_testkit::postgres::fresh_database().await;
                let store = PgStore::open(&url, options(max_queue))
                    .await
                    .expect("the PostgreSQL store opens");
                let harness = Harness {
                    db: Db::Postgres(store.clone()),
                    _dir: None,
                };
                (harness, Store::new(store))
            }
        }
    }
}

impl Harness {
    /// Runs a statement behind the store's back (a test's set-up).
    pub(crate) async fn execute(&self, sql: String) {
        match &self.db {
            Db::Sqlite(store) => store
                .write(move |tx| Ok(tx.execute(&sql, [])?))
                .await
                .map(|_| ())
                .expect("the statement runs"),
            Db::Postgres(store) => {
                let client = store.client().await.expect("a connection");
                client.execute(&sql, &[]).await.expect("the statement runs");
            }
        }
    }

    /// The numbers in the first row `sql` selects, each as `f64`.
    pub(crate) async fn numbers(&self, sql: String) -> Vec<f64> {
        match &self.db {
            Db::Sqlite(store) => store
                .write(move |tx| {
                    Ok(tx.query_row(&sql, [], |row| {
                        (0..row.as_ref().column_count())
                            .map(|i| row.get::<_, f64>(i))
                            .collect::<rusqlite::Result<Vec<f64>>>()
                    })?)
                })
                .await
                .expect("the query runs"),
            Db::Postgres(store) => {
                let client = store.client().await.expect("a connection");
                let row = client.query_one(&sql, &[]).await.expect("the query runs");
                (0..row.len()).map(|i| pg_number(&row, i)).collect()
            }
        }
    }
}

fn pg_number(row: &tokio_postgres::Row, i: usize) -> f64 {
    use tokio_postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    if ty == Type::INT8 {
        row.get::<_, i64>(i) as f64
    } else if ty == Type::INT4 {
        f64::from(row.get::<_, i32>(i))
    } else if ty == Type::INT2 {
        f64::from(row.get::<_, i16>(i))
    } else if ty == Type::FLOAT4 {
        f64::from(row.get::<_, f32>(i))
    } else {
        row.get::<_, f64>(i)
    }
}

/// Runs each named `async fn(Backend)` as two tests: `on_sqlite::name` and
/// `on_postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::store::harness::Backend::Sqlite).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::store::harness::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
