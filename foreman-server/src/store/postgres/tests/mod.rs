//! PostgreSQL only: several replicas (several [`PgStore`]s) on one database. The rules
//! every backend keeps are in the conformance suite (`store/tests.rs`); these are the ones
//! only a shared queue has: one target's slots over all replicas, sync jobs owned by the
//! replica their caller is connected to, the rescue of a replica whose lease lapsed,
//! outbox claims, a shared rate window and the notifications between replicas. The
//! helpers are here; the tests are in the modules below.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use foreman_testkit::wait_until;
use foreman_types::{JobId, JobState};
use tokio_util::sync::CancellationToken;

use super::PgStore;
use crate::scheduler::{TargetView, Tenant};
use crate::store::harness::options;
use crate::store::tests::{add, job, LONG};
use crate::store::*;

mod claims;
mod leases;
mod outage;
mod shared;

/// One replica: the store, and its id for peeking at its rows.
struct Replica {
    pg: PgStore,
    store: Store,
}

impl Replica {
    fn id(&self) -> &str {
        self.pg.replica()
    }

    /// Runs `sql` behind the store's back.
    async fn execute(&self, sql: &str) {
        let client = self.pg.client().await.expect("a connection");
        client.execute(sql, &[]).await.expect("the statement runs");
    }

    /// The first column of the first row `sql` selects, a count.
    async fn count(&self, sql: &str) -> i64 {
        let client = self.pg.client().await.expect("a connection");
        client
            .query_one(sql, &[])
            .await
            .expect("the query runs")
            .get(0)
    }

    /// What this replica claims next on [`one_slot`], if anything.
    async fn claim(&self) -> Option<ClaimedJob> {
        self.store
            .claim_next(one_slot())
            .await
            .expect("the claim runs")
    }

    /// The job this replica claims next on [`one_slot`]; panics when there is none.
    async fn claimed(&self) -> ClaimedJob {
        self.claim().await.expect("a job to claim")
    }

    /// Adds an async job for `a:latest` and claims it: a run of this replica's.
    async fn running(&self) -> JobId {
        let id = add(&self.store, job("a:latest", Origin::Async)).await;
        assert_eq!(self.claimed().await.id, id, "the job just added is claimed");
        id
    }

    /// Makes this replica's lease lapse now, as if it had stopped renewing it.
    async fn lapse(&self) {
        let id = self.id().to_owned();
        self.execute(&format!(
            "UPDATE replicas SET expires_at = 0 WHERE id = '{id}'"
        ))
        .await;
    }
}

/// `N` replicas on one fresh database: `let [a, b] = &replicas().await;`.
async fn replicas<const N: usize>() -> [Replica; N] {
    let url = foreman_testkit::postgres::fresh_database().await;
    let mut out = Vec::new();
    for _ in 0..N {
        let pg = PgStore::open(&url, options(10_000))
            .await
            .expect("the PostgreSQL store opens");
        out.push(Replica {
            store: Store::new(pg.clone()),
            pg,
        });
    }
    out.try_into()
        .unwrap_or_else(|_| unreachable!("as many replicas as asked for"))
}

/// A claim on one target `gpu` that runs one generation at a time, whose lane (on this
/// replica) is free.
fn one_slot() -> ClaimRequest {
    ClaimRequest {
        targets: vec![TargetView {
            name: "gpu".into(),
            up: true,
            free_slots: 1,
            parallel: 1,
            ..TargetView::default()
        }],
        ..ClaimRequest::single(None, LONG)
    }
}

fn done() -> Finish {
    Finish::Done {
        result: None,
        artifacts: Vec::new(),
    }
}

async fn state(store: &Store, id: JobId) -> JobState {
    store.job(id).await.unwrap().expect("the job exists").state
}
