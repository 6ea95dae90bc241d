//! The SQLite store's own behaviour: what waits for the disk, the writer's threads.

use std::time::Duration;

use super::*;
use crate::store::model::*;
use crate::store::tests::{add, job};
use crate::store::Store;

/// A store in a fresh directory, kept while the directory is.
fn on_disk(options: StoreOptions) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("foreman.db"), options).unwrap();
    (dir, store)
}

/// An async job's 202 waits for the disk; a sync job's run, which no crash resumes,
/// waits only for the WAL (ADR 24).
#[tokio::test]
async fn only_what_must_survive_power_loss_waits_for_the_disk() {
    let (_dir, store) = on_disk(crate::store::harness::options(100));
    let syncs = || store.writer.disk_syncs();

    let chat = add(&Store::new(store.clone()), job("a:latest", Origin::Sync)).await;
    let claim = ClaimRequest::single(None, Duration::from_secs(60));
    assert_eq!(
        store.claim_next(claim.clone()).await.unwrap().unwrap().id,
        chat
    );
    assert!(store.mark_working(chat).await.unwrap());
    let done = Finish::Done {
        result: None,
        artifacts: Vec::new(),
    };
    store
        .finish_reporting(chat, done.clone(), Reported::default())
        .await
        .unwrap();
    assert_eq!(syncs(), 0, "a sync job's whole life without an fsync");

    let batch = add(&Store::new(store.clone()), job("a:latest", Origin::Async)).await;
    assert_eq!(syncs(), 1, "an async job is on the disk before its 202");
    store.claim_next(claim).await.unwrap().unwrap();
    assert_eq!(syncs(), 1, "its claim is not");
    store
        .finish_reporting(batch, done, Reported::default())
        .await
        .unwrap();
    store.writer.on_disk().await;
    assert_eq!(syncs(), 2, "its end is, before anyone is told of it");
}

/// The writer goes on committing while the WAL is synced: what needs only the commit
/// is answered without waiting for an `fsync` begun for an earlier batch (ADR 25).
#[tokio::test]
#[expect(
    clippy::await_holding_lock,
    reason = "the guard holds the sync thread, not this task; this task never locks it"
)]
async fn a_commit_does_not_wait_for_an_earlier_batch_to_reach_the_disk() {
    let (_dir, store) = on_disk(crate::store::harness::options(100));
    let held = store.writer.hold_syncs();
    let store_ = Store::new(store.clone());
    let batch = job("a:latest", Origin::Async);
    let batch_id = batch.id;
    // Polled once: its operation is with the writer, committed, its fsync held.
    let mut accepting = Box::pin(store_.enqueue(batch));
    assert!(futures::poll!(&mut accepting).is_pending());
    // Committed after it, and answered while the async job's fsync waits.
    let chat = tokio::time::timeout(
        Duration::from_secs(10),
        add(&store_, job("a:latest", Origin::Sync)),
    )
    .await
    .expect("a sync job's commit waits for no fsync");
    let claim = ClaimRequest::single(None, Duration::from_secs(60));
    let first = store.claim_next(claim).await.unwrap().unwrap();
    assert_eq!(first.id, batch_id, "committed first, so first in the queue");
    assert_ne!(first.id, chat);
    assert!(
        futures::poll!(&mut accepting).is_pending(),
        "the async job's 202 waits for the disk"
    );
    assert_eq!(store.writer.disk_syncs(), 0);

    drop(held);
    assert_eq!(accepting.await.unwrap().id(), batch_id);
    assert_eq!(store.writer.disk_syncs(), 1);
}

/// A long WAL is copied into the database by the checkpoint thread, not by the commit
/// that made it long (ADR 27): held, the WAL grows past SQLite's automatic checkpoint
/// (the thread is asked once per 1,000 frames of growth, not at every commit), and
/// once let go the checkpoint thread catches up.
#[tokio::test]
#[expect(
    clippy::await_holding_lock,
    reason = "the guard holds the checkpoint thread, not this task; this task never locks it"
)]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let (dir, store) = on_disk(crate::store::harness::options(10_000));
    let wal = dir.path().join("foreman.db-wal");
    let frames = || std::fs::metadata(&wal).map_or(0, |m| m.len()) / (4096 + 24);
    let store_ = Store::new(store.clone());
    let held = store.writer.hold_checkpoints();
    // Commits one at a time until the WAL is twice as long as a checkpoint's limit,
    // which a writer that checkpointed itself would not let it become.
    let long = 2 * writer::CHECKPOINT_AT as u64;
    for _ in 0..5_000 {
        if frames() >= long {
            break;
        }
        add(&store_, job("a:latest", Origin::Sync)).await;
    }
    assert!(frames() >= long, "the WAL has {} frames", frames());
    // Asked at 1,000 frames and maybe at 2,000, not after each of the commits since.
    let asked = store.writer.checkpoint_requests();
    assert!((1..=2).contains(&asked), "asked {asked} times");
    let before = *store.writer.checkpoints.borrow();
    drop(held);
    tokio::time::timeout(
        Duration::from_secs(10),
        store.writer.checkpointed(before + 1),
    )
    .await
    .expect("the checkpoint thread copies the WAL once let go");
    // Every frame copied: the WAL starts over, and stays at its size from now on.
    let grown = frames();
    for _ in 0..50 {
        add(&store_, job("a:latest", Origin::Sync)).await;
    }
    assert_eq!(frames(), grown, "the WAL started over instead of growing");
}

/// A run's end asks whether a job may wait for its slot: the queue as the last commit
/// left it, whatever put the job there or took it out.
#[tokio::test]
async fn the_writer_knows_whether_a_job_may_be_waiting() {
    let (_dir, store) = on_disk(crate::store::harness::options(100));
    let store_ = Store::new(store.clone());
    assert!(store.may_have_queued(), "nothing committed yet: maybe");
    let claim = ClaimRequest::single(None, Duration::from_secs(60));
    let id = add(&store_, job("a:latest", Origin::Async)).await;
    assert!(store.may_have_queued(), "enqueued");
    store.claim_next(claim.clone()).await.unwrap().unwrap();
    assert!(!store.may_have_queued(), "claimed, the queue is empty");
    let retry = Finish::Retry {
        error: "refused".into(),
        max_attempts: 3,
    };
    store_.finish(id, retry).await.unwrap();
    assert!(store.may_have_queued(), "queued again by a retry");
    store.claim_next(claim.clone()).await.unwrap().unwrap();
    let done = Finish::Done {
        result: None,
        artifacts: Vec::new(),
    };
    store_.finish(id, done).await.unwrap();
    assert!(!store.may_have_queued(), "ended");
    let waiting = add(&store_, job("a:latest", Origin::Sync)).await;
    assert!(store.may_have_queued());
    store_
        .cancel_if_queued(waiting, "the caller left".into())
        .await
        .unwrap();
    assert!(!store.may_have_queued(), "cancelled while queued");
}

/// The writer keeps its statement journals in memory: a claim's, some fifteen pages,
/// would otherwise spill to a temporary file that each claim creates and deletes.
#[tokio::test]
async fn the_writer_keeps_its_temporary_data_in_memory() {
    let (_dir, store) = on_disk(crate::store::harness::options(100));
    let temp_store: i64 = store
        .write(|tx| Ok(tx.query_row("PRAGMA temp_store", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(temp_store, 2, "PRAGMA temp_store = MEMORY");
}

/// An idle writer's caller commits its operation itself; while the connection is
/// busy, an operation waits for the writer thread, which takes it once it is free
/// (ADR 29).
#[tokio::test]
#[expect(
    clippy::await_holding_lock,
    reason = "the guard holds the connection against the writer thread, which this task \
              only waits for after letting it go"
)]
async fn an_idle_writers_caller_commits_on_its_own_thread() {
    let (_dir, store) = on_disk(crate::store::harness::options(100));
    let thread = || {
        let store = store.clone();
        async move {
            store
                .write(|_| Ok(std::thread::current().name().map(str::to_owned)))
                .await
                .unwrap()
        }
    };
    let here = std::thread::current().name().map(str::to_owned);
    assert_eq!(thread().await, here, "committed by its caller");

    let held = store.writer.hold_connection();
    let mut waiting = Box::pin(thread());
    assert!(
        futures::poll!(&mut waiting).is_pending(),
        "the connection is busy"
    );
    drop(held);
    let ran_on = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the writer thread takes it once the connection is free");
    assert_eq!(ran_on.as_deref(), Some("foreman-db-writer"));
}

/// An async job's end is answered at its commit; the webhook dispatcher, which tells
/// the world of it, waits for the sync (ADR 25).
#[tokio::test]
#[expect(
    clippy::await_holding_lock,
    reason = "the guard holds the sync thread, not this task; this task never locks it"
)]
async fn an_async_jobs_end_is_announced_only_once_it_is_on_the_disk() {
    let (_dir, store) = on_disk(StoreOptions {
        public_url: "http://foreman.test".into(),
        ..crate::store::harness::options(100)
    });
    let id = add(
        &Store::new(store.clone()),
        NewJob {
            webhook_url: Some("http://hooks.test/done".into()),
            ..job("a:latest", Origin::Async)
        },
    )
    .await;
    let claim = ClaimRequest::single(None, Duration::from_secs(60));
    assert_eq!(store.claim_next(claim).await.unwrap().unwrap().id, id);
    // The `queued` and `working` events are on the disk: deliver and record them.
    for _ in 0..2 {
        let due = store.due_deliveries(10).await.unwrap();
        assert_eq!(due.len(), 1);
        let delivered = DeliveryOutcome {
            status: Some(200),
            latency: Duration::from_millis(1),
            error: None,
        };
        store
            .record_delivery(&due[0], delivered, 5, Duration::from_secs(1))
            .await
            .unwrap();
    }

    let held = store.writer.hold_syncs();
    let done = Finish::Done {
        result: None,
        artifacts: Vec::new(),
    };
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        store.finish_reporting(id, done, Reported::default()),
    )
    .await
    .expect("the run's end waits for no fsync")
    .unwrap();
    assert_eq!(ended, Some(foreman_types::JobState::Done));
    assert_eq!(store.read_due(10).await.unwrap().len(), 1, "committed");
    assert!(
        futures::poll!(Box::pin(store.writer.on_disk())).is_pending(),
        "not yet on the disk"
    );
    // Whether something does not happen can only be watched for a while.
    let announced = tokio::time::timeout(Duration::from_millis(300), store.due_deliveries(10));
    assert!(
        announced.await.is_err(),
        "the `done` event is not handed out before it is on the disk"
    );

    drop(held);
    let due = store.due_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1);
    let body = String::from_utf8_lossy(&due[0].body);
    assert!(body.contains("\"done\""), "{body}");
}
