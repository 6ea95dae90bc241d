//! PostgreSQL only: several replicas (several [`PgStore`]s) on one database. The rules
//! every backend keeps are in the conformance suite (`store/tests.rs`); these are the ones
//! only a shared queue has: one target's slots over all replicas, sync jobs owned by the
//! replica their caller is connected to, the rescue of a replica whose lease lapsed,
//! outbox claims, a shared rate window and the notifications between replicas.

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

    /// Makes this replica's lease lapse now, as if it had stopped renewing it.
    async fn lapse(&self) {
        let id = self.id().to_owned();
        self.execute(&format!(
            "UPDATE replicas SET expires_at = 0 WHERE id = '{id}'"
        ))
        .await;
    }
}

/// `n` replicas on one fresh database.
async fn replicas(n: usize) -> Vec<Replica> {
    let url = foreman_testkit::postgres::fresh_database().await;
    let mut out = Vec::new();
    for _ in 0..n {
        let pg = PgStore::open(&url, options(10_000))
            .await
            .expect("the PostgreSQL store opens");
        out.push(Replica {
            store: Store::new(pg.clone()),
            pg,
        });
    }
    out
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claiming_at_once_never_run_two_generations_on_a_one_slot_target() {
    const JOBS: usize = 24;
    let replicas = replicas(2).await;
    let mut ids = Vec::new();
    for i in 0..JOBS {
        ids.push(add(&replicas[i % 2].store, job("a:latest", Origin::Async)).await);
    }
    let running = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut claimers = tokio::task::JoinSet::new();
    for replica in &replicas {
        for _ in 0..3 {
            let store = replica.store.clone();
            let pg = replica.pg.clone();
            let (running, finished) = (running.clone(), finished.clone());
            claimers.spawn(async move {
                while finished.load(Ordering::SeqCst) < JOBS {
                    let Some(claimed) = store.claim_next(one_slot()).await.unwrap() else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    // The run lasts from the claim's commit until just before its end is
                    // committed, and takes a database round trip, so that another claim
                    // can try its luck meanwhile: no other run may start on the target.
                    let before = running.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(before, 0, "two generations at once on a one-slot target");
                    let client = pg.client().await.unwrap();
                    let on_target: i64 = client
                        .query_one(
                            "SELECT count(*) FROM jobs
                             WHERE target = 'gpu' AND state IN ('loading', 'working')",
                            &[],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    assert_eq!(on_target, 1, "two jobs running on a one-slot target");
                    drop(client);
                    running.fetch_sub(1, Ordering::SeqCst);
                    let ended = store.finish(claimed.id, done()).await.unwrap();
                    assert_eq!(ended, Some(JobState::Done));
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    }
    let all_done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(claimer) = claimers.join_next().await {
            claimer.expect("a claimer panicked");
        }
    })
    .await;
    assert!(all_done.is_ok(), "the jobs were not all run in time");
    for id in ids {
        let job = replicas[0].store.job(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Done, 1),
            "run exactly once"
        );
    }
    let held = replicas[0]
        .count("SELECT count(*) FROM target_slots WHERE holder IS NOT NULL")
        .await;
    assert_eq!(held, 0, "every slot was freed");
}

#[tokio::test]
async fn a_cancelled_run_keeps_its_slot_until_its_replica_has_stopped_it() {
    let both = replicas(2).await;
    let (a, b) = (&both[0], &both[1]);
    let id = add(&a.store, job("a:latest", Origin::Async)).await;
    assert_eq!(
        a.store.claim_next(one_slot()).await.unwrap().unwrap().id,
        id
    );
    let next = add(&b.store, job("a:latest", Origin::Async)).await;

    // Cancelled through replica B while A's generation is still running.
    assert_eq!(
        b.store.cancel(id, "stop".into()).await.unwrap(),
        Some(JobState::Loading)
    );
    assert!(
        b.store.claim_next(one_slot()).await.unwrap().is_none(),
        "the target still runs A's generation"
    );
    // A's stale answers change nothing, and its stopped run frees the slot.
    assert!(!a.store.mark_working(id).await.unwrap());
    let stopped = Finish::Cancelled {
        reason: "cancelled".into(),
    };
    assert_eq!(a.store.finish(id, stopped).await.unwrap(), None);
    assert_eq!(
        b.store.claim_next(one_slot()).await.unwrap().map(|c| c.id),
        Some(next)
    );
}

#[tokio::test]
async fn a_replica_back_from_a_pause_past_its_lease_gives_its_work_back_first() {
    let one = replicas(1).await;
    let a = &one[0];
    let batch = add(&a.store, job("a:latest", Origin::Async)).await;
    a.store.claim_next(one_slot()).await.unwrap().unwrap();
    let chat = add(&a.store, job("a:latest", Origin::Sync)).await;
    a.lapse().await;

    // While lapsed it neither claims nor takes sync callers.
    assert!(a.store.claim_next(one_slot()).await.unwrap().is_none());
    assert!(matches!(
        a.store.enqueue(job("a:latest", Origin::Sync)).await,
        Err(StoreError::LeaseLapsed)
    ));
    // Its next renewal says so, having put its run back and cancelled its sync job.
    assert!(matches!(
        a.store.keep_alive(5, vec![batch]).await,
        Err(StoreError::LeaseLapsed)
    ));
    assert_eq!(state(&a.store, batch).await, JobState::Queued);
    assert_eq!(state(&a.store, chat).await, JobState::Cancelled);
    // Renewed: it claims again, the slot free.
    assert_eq!(
        a.store.claim_next(one_slot()).await.unwrap().unwrap().id,
        batch
    );
    assert_eq!(
        a.store.keep_alive(5, vec![batch]).await.unwrap(),
        Recovered::default()
    );
}

#[tokio::test]
async fn a_run_whose_end_was_never_written_is_given_back_after_a_lease() {
    let one = replicas(1).await;
    let a = &one[0];
    let id = add(&a.store, job("a:latest", Origin::Async)).await;
    a.store.claim_next(one_slot()).await.unwrap().unwrap();
    // Still running here, or too recent to judge: left alone.
    let nothing = a.store.keep_alive(5, vec![id]).await.unwrap();
    assert_eq!(nothing, Recovered::default());
    assert_eq!(
        a.store.keep_alive(5, Vec::new()).await.unwrap(),
        Recovered::default()
    );
    assert!(a.store.claim_next(one_slot()).await.unwrap().is_none());

    // A lease later, and this process no longer runs it (its end failed to commit).
    a.execute(&format!(
        "UPDATE jobs SET updated_at = updated_at - 60000 WHERE id = '{id}'"
    ))
    .await;
    let swept = a.store.keep_alive(5, Vec::new()).await.unwrap();
    assert_eq!(swept.requeued, 1);
    assert_eq!(state(&a.store, id).await, JobState::Queued);
    assert_eq!(
        a.store.claim_next(one_slot()).await.unwrap().unwrap().id,
        id
    );
}

#[tokio::test]
async fn a_cancel_through_another_replica_reaches_a_sync_caller_still_queued() {
    let both = replicas(2).await;
    let (a, b) = (&both[0], &both[1]);
    let stop = CancellationToken::new();
    let (_wakers, mut cancels) = listening(a, &stop).await;
    let chat = add(&a.store, job("a:latest", Origin::Sync)).await;
    assert_eq!(
        b.store.cancel(chat, "no".into()).await.unwrap(),
        Some(JobState::Queued)
    );
    let heard = tokio::time::timeout(Duration::from_secs(10), cancels.recv()).await;
    assert_eq!(heard.expect("heard in time"), Some(chat));
    stop.cancel();
}

#[tokio::test]
async fn a_replica_cannot_end_a_run_another_replica_took_over() {
    let both = replicas(2).await;
    let (a, b) = (&both[0], &both[1]);
    let id = add(&a.store, job("a:latest", Origin::Async)).await;
    a.store.claim_next(one_slot()).await.unwrap().unwrap();
    a.lapse().await;
    b.store.keep_alive(5, Vec::new()).await.unwrap();
    assert_eq!(
        b.store.claim_next(one_slot()).await.unwrap().unwrap().id,
        id
    );

    // A comes back from a long pause and reports its old run: B's run goes on.
    assert_eq!(a.store.finish(id, done()).await.unwrap(), None);
    assert_eq!(state(&b.store, id).await, JobState::Loading);
    assert!(b.store.mark_working(id).await.unwrap());
    assert_eq!(
        b.store.finish(id, done()).await.unwrap(),
        Some(JobState::Done)
    );
}

#[tokio::test]
async fn a_sync_job_is_claimed_only_by_the_replica_its_caller_is_connected_to() {
    let replicas = replicas(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let sync = add(&a.store, job("a:latest", Origin::Sync)).await;
    let later = add(&b.store, job("a:latest", Origin::Async)).await;

    let claimed = b.store.claim_next(one_slot()).await.unwrap().unwrap();
    assert_eq!(claimed.id, later, "B passes over A's older sync job");
    b.store.finish(later, done()).await.unwrap();
    assert!(b.store.claim_next(one_slot()).await.unwrap().is_none());
    assert_eq!(state(&b.store, sync).await, JobState::Queued);

    let claimed = a.store.claim_next(one_slot()).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.origin), (sync, Origin::Sync));
}

#[tokio::test]
async fn a_lapsed_replicas_work_is_taken_over_once_by_the_live_ones() {
    let replicas = replicas(3).await;
    let (dead, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
    let running = add(
        &dead.store,
        NewJob {
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..job("a:latest", Origin::Async)
        },
    )
    .await;
    assert_eq!(
        dead.store.claim_next(one_slot()).await.unwrap().unwrap().id,
        running
    );
    let streaming = add(&dead.store, job("a:latest", Origin::Sync)).await;
    let wide = ClaimRequest {
        targets: vec![TargetView {
            name: "other".into(),
            up: true,
            free_slots: 1,
            parallel: 1,
            ..TargetView::default()
        }],
        ..one_slot()
    };
    assert_eq!(
        dead.store.claim_next(wide).await.unwrap().unwrap().id,
        streaming
    );
    let waiting = add(&dead.store, job("a:latest", Origin::Sync)).await;
    let claimed_deliveries = dead.store.due_deliveries(10).await.unwrap();
    assert_eq!(
        claimed_deliveries.len(),
        1,
        "the dead replica held a delivery"
    );

    dead.lapse().await;
    assert!(
        dead.store.claim_next(one_slot()).await.unwrap().is_none(),
        "a replica whose lease lapsed claims nothing"
    );
    let (by_b, by_c) = tokio::join!(
        b.store.keep_alive(3, Vec::new()),
        c.store.keep_alive(3, Vec::new())
    );
    let mut rescued = by_b.unwrap();
    rescued += by_c.unwrap();
    assert_eq!(
        rescued,
        Recovered {
            requeued: 1,
            failed: 0,
            cancelled: 2
        },
        "taken over exactly once"
    );

    let job = b.store.job(running).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 1));
    assert!(
        job.error.unwrap().contains(dead.id()),
        "names the lost replica"
    );
    assert_eq!(state(&b.store, streaming).await, JobState::Cancelled);
    assert_eq!(state(&b.store, waiting).await, JobState::Cancelled);
    let leftovers = b
        .count(&format!(
            "SELECT (SELECT count(*) FROM target_slots WHERE holder IS NOT NULL)
                  + (SELECT count(*) FROM webhook_outbox WHERE claimed_by IS NOT NULL)
                  + (SELECT count(*) FROM replicas WHERE id = '{}')",
            dead.id()
        ))
        .await;
    assert_eq!(
        leftovers, 0,
        "its slots, outbox claims and lease row are gone"
    );
    assert_eq!(
        b.store.due_deliveries(10).await.unwrap()[0].webhook_id,
        claimed_deliveries[0].webhook_id,
        "its delivery is due again, for a live replica"
    );
    let rerun = c.store.claim_next(one_slot()).await.unwrap().unwrap();
    assert_eq!(
        (rerun.id, rerun.attempts),
        (running, 2),
        "the freed slot runs it again"
    );
    assert_eq!(
        b.store.keep_alive(3, Vec::new()).await.unwrap(),
        Recovered::default()
    );
}

#[tokio::test]
async fn a_rescued_job_out_of_attempts_fails_naming_the_lost_replica() {
    let replicas = replicas(2).await;
    let (dead, live) = (&replicas[0], &replicas[1]);
    let id = add(&dead.store, job("a:latest", Origin::Async)).await;
    dead.store.claim_next(one_slot()).await.unwrap().unwrap();
    dead.lapse().await;
    let rescued = live.store.keep_alive(1, Vec::new()).await.unwrap();
    assert_eq!(rescued.failed, 1);
    let job = live.store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.unwrap();
    assert!(
        error.contains(dead.id()) && error.contains("gave up after 1"),
        "{error}"
    );
}

#[tokio::test]
async fn a_delivery_is_handed_to_one_replica_until_it_is_recorded_or_its_claim_lapses() {
    let replicas = replicas(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let mut ids = Vec::new();
    for _ in 0..20 {
        let hooked = NewJob {
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..job("a:latest", Origin::Async)
        };
        ids.push(add(&a.store, hooked).await);
    }
    let (to_a, to_b) = tokio::join!(a.store.due_deliveries(15), b.store.due_deliveries(15));
    let (to_a, to_b) = (to_a.unwrap(), to_b.unwrap());
    let mut handed: Vec<i64> = to_a.iter().chain(&to_b).map(|d| d.outbox_id).collect();
    handed.sort_unstable();
    handed.dedup();
    assert_eq!(
        handed.len(),
        to_a.len() + to_b.len(),
        "no delivery handed out twice"
    );
    assert_eq!(handed.len(), 20, "between them, every due delivery");
    assert!(a.store.due_deliveries(20).await.unwrap().is_empty());
    let next = b.store.next_delivery_at().await.unwrap().unwrap();
    assert!(
        next > now_ms(),
        "a claimed delivery is not due for the others"
    );

    let ok = DeliveryOutcome {
        status: Some(204),
        latency: Duration::ZERO,
        error: None,
    };
    let failed = DeliveryOutcome {
        status: Some(500),
        latency: Duration::ZERO,
        error: Some("500".into()),
    };
    a.store
        .record_delivery(&to_a[0], failed, 5, Duration::ZERO)
        .await
        .unwrap();
    let retry = b.store.due_deliveries(20).await.unwrap();
    assert_eq!(retry.len(), 1, "a recorded attempt gives up the claim");
    assert_eq!(
        (retry[0].outbox_id, retry[0].attempts),
        (to_a[0].outbox_id, 1)
    );
    b.store
        .record_delivery(&retry[0], ok, 5, Duration::ZERO)
        .await
        .unwrap();

    a.execute("UPDATE webhook_outbox SET claim_expires_at = 0 WHERE claimed_by IS NOT NULL")
        .await;
    let lapsed = b.store.due_deliveries(40).await.unwrap();
    assert_eq!(
        lapsed.len(),
        19,
        "lapsed claims are due again (the delivered one is not)"
    );
}

#[tokio::test]
async fn replicas_share_one_rate_window_per_tenant() {
    let replicas = replicas(2).await;
    let (a, b) = (&replicas[0].store, &replicas[1].store);
    let alice = Tenant::new("alice", "");
    assert!(a.admit_shared(alice.clone(), 3).await.unwrap().is_ok());
    assert!(b.admit_shared(alice.clone(), 3).await.unwrap().is_ok());
    assert!(a.admit_shared(alice.clone(), 3).await.unwrap().is_ok());
    for store in [a, b] {
        let wait = store
            .admit_shared(alice.clone(), 3)
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "until the first leaves the window: {wait:?}"
        );
    }
    let lowered = a.admit_shared(alice.clone(), 1).await.unwrap();
    assert!(lowered.is_err(), "a lowered limit applies at once");
    assert!(b
        .admit_shared(Tenant::new("alice", "u1"), 3)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(
        b.admit_shared(Tenant::new("bob", ""), 0).await.unwrap(),
        Err(Duration::from_secs(60)),
        "rpm 0 admits nothing"
    );
    assert!(b.is_shared());
}

/// Starts `replica` listening; returns its wakers (and the receiver of its cancels) once
/// its connection is listening.
async fn listening(
    replica: &Replica,
    stop: &CancellationToken,
) -> (Wakers, tokio::sync::mpsc::UnboundedReceiver<JobId>) {
    let (cancelled, cancels) = tokio::sync::mpsc::unbounded_channel();
    let wakers = Wakers {
        work: Arc::default(),
        keys: Arc::default(),
        cancelled,
    };
    let before = replica
        .count(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await;
    replica.store.watch(wakers.clone(), stop.clone());
    let listening = wait_until(Duration::from_secs(10), || async {
        replica
            .count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND query LIKE 'LISTEN%'
                   AND state = 'idle'",
            )
            .await
            > before
    })
    .await;
    assert!(listening, "the replica never listened");
    (wakers, cancels)
}

#[tokio::test]
async fn a_replica_hears_the_others_jobs_keys_and_cancels() {
    let replicas = replicas(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let stop = CancellationToken::new();
    let (wakers, mut cancels) = listening(b, &stop).await;
    let heard = Duration::from_secs(10);

    add(&a.store, job("a:latest", Origin::Async)).await;
    let woken = tokio::time::timeout(heard, wakers.work.notified()).await;
    assert!(woken.is_ok(), "an enqueue on A wakes B's dispatcher");

    let key = crate::keys::KeyRecord {
        name: "ci".into(),
        hash: [7; 32],
        prefix: "fm_ci".into(),
        admin: true,
        weight: 1,
        max_queued: None,
        rpm: None,
        trust_user_header: false,
        created_at: now_ms(),
    };
    a.store.create_key(key, true).await.unwrap();
    let woken = tokio::time::timeout(heard, wakers.keys.notified()).await;
    assert!(woken.is_ok(), "a key created on A makes B reload its keys");

    let claimed = b.store.claim_next(one_slot()).await.unwrap().unwrap();
    let was = a
        .store
        .cancel(claimed.id, "not wanted".into())
        .await
        .unwrap();
    assert!(matches!(was, Some(JobState::Loading | JobState::Working)));
    let stopped = tokio::time::timeout(heard, cancels.recv()).await;
    assert_eq!(
        stopped.ok().flatten(),
        Some(claimed.id),
        "B stops the run A cancelled"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_replica_listens_again_after_losing_its_connection() {
    let replicas = replicas(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let stop = CancellationToken::new();
    let (wakers, _cancels) = listening(b, &stop).await;
    let heard = Duration::from_secs(10);

    a.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await;
    let woken = tokio::time::timeout(heard, wakers.work.notified()).await;
    assert!(
        woken.is_ok(),
        "listening again, B looks for work it may have missed"
    );
    add(&a.store, job("a:latest", Origin::Async)).await;
    let woken = tokio::time::timeout(heard, wakers.work.notified()).await;
    assert!(woken.is_ok(), "B hears A's enqueues again");
    stop.cancel();
}

#[tokio::test]
async fn replicas_racing_on_one_idempotency_key_make_one_job() {
    let replicas = replicas(2).await;
    for round in 0..10 {
        let keyed = || NewJob {
            idempotency_key: Some(format!("key-{round}")),
            request_hash: Some("same".into()),
            ..job("a:latest", Origin::Async)
        };
        let (first, second) = tokio::join!(
            replicas[0].store.enqueue(keyed()),
            replicas[1].store.enqueue(keyed())
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.id(), second.id(), "one job");
        let created = [&first, &second]
            .iter()
            .filter(|e| matches!(e, Enqueued::Created(_)))
            .count();
        assert_eq!(created, 1, "one created, the other told it exists");
    }
    let jobs = replicas[0].count("SELECT count(*) FROM jobs").await;
    assert_eq!(jobs, 10);
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/foreman");
    let err = PgStore::open(&url, options(10)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn connections_the_database_drops_are_unavailable_and_replaced_by_the_pool() {
    let replicas = replicas(1).await;
    let replica = &replicas[0];
    add(&replica.store, job("a:latest", Origin::Async)).await;
    // Every pooled connection is dropped by the server, as when PostgreSQL restarts.
    let admin = fresh_admin().await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&replica.database().await],
        )
        .await
        .unwrap();
    // Each failing call costs the pool one dead connection, so it runs out of them.
    let mut errors = Vec::new();
    let mut recovered = false;
    for _ in 0..=16 {
        match replica.store.counts_by_state().await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(err) => errors.push(err),
        }
    }
    assert!(recovered, "the pool connects again by itself");
    for err in &errors {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}

/// A connection to the test server's maintenance database, outside any store.
async fn fresh_admin() -> tokio_postgres::Client {
    let url = std::env::var("FOREMAN_TEST_PG_URL").expect("FOREMAN_TEST_PG_URL");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test server answers");
    tokio::spawn(connection);
    client
}

impl Replica {
    /// The name of the replica's database.
    async fn database(&self) -> String {
        let client = self.pg.client().await.expect("a connection");
        client
            .query_one("SELECT current_database()::TEXT", &[])
            .await
            .unwrap()
            .get(0)
    }
}
