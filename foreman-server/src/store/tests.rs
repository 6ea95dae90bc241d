//! The queue's rules, tested on both backends (the conformance suite).

use std::time::Duration;

use bytes::Bytes;
use foreman_types::{JobId, JobKind, JobState};

use super::fair_share_tests::assert_counts_agree;
use super::harness::Backend;
use super::*;

pub(super) fn job(model: &str, origin: Origin) -> NewJob {
    NewJob {
        id: JobId::new(),
        kind: JobKind::Chat,
        origin,
        model: model.into(),
        priority: 0,
        payload: Bytes::from_static(b"{\"model\":\"m\",\"messages\":[]}"),
        webhook_url: None,
        tenant: crate::scheduler::Tenant::default(),
        weight: 1,
        max_queued: None,
        idempotency_key: None,
        request_hash: None,
    }
}

/// [`job`] at `priority`.
pub(super) fn urgent(priority: i32, model: &str, origin: Origin) -> NewJob {
    NewJob {
        priority,
        ..job(model, origin)
    }
}

pub(super) fn claim(resident: Option<&str>, window: Duration) -> ClaimRequest {
    ClaimRequest::single(resident, window)
}

pub(super) async fn add(store: &Store, new: NewJob) -> JobId {
    store.enqueue(new).await.expect("enqueue").id()
}

/// The job claimed next with `resident` loaded and a long window; there must be one.
pub(super) async fn claim_one(store: &Store, resident: Option<&str>) -> ClaimedJob {
    store
        .claim_next(claim(resident, LONG))
        .await
        .expect("claim")
        .expect("a job to claim")
}

pub(super) async fn state(store: &Store, id: JobId) -> JobState {
    store.job(id).await.unwrap().expect("job exists").state
}

pub(super) const LONG: Duration = Duration::from_secs(3600);

async fn next_job_prefers_the_resident_model_then_the_oldest(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let a1 = add(&store, job("a:latest", Origin::Async)).await;
    let b1 = add(&store, job("b:latest", Origin::Async)).await;
    let a2 = add(&store, job("a:latest", Origin::Async)).await;

    let first = claim_one(&store, Some("b:latest")).await;
    assert_eq!(first.id, b1, "the resident model's job goes first");
    assert_eq!(
        first.state,
        JobState::Working,
        "a resident model starts working at once"
    );

    let second = claim_one(&store, None).await;
    assert_eq!(
        second.id, a1,
        "with nothing resident, the oldest goes first"
    );
    assert_eq!(second.state, JobState::Loading);
    let third = claim_one(&store, Some("a:latest")).await;
    assert_eq!(third.id, a2);
    assert!(store.claim_next(claim(None, LONG)).await.unwrap().is_none());
}

async fn the_oldest_job_stops_being_passed_over_once_the_window_is_spent(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let old = add(&store, job("a:latest", Origin::Async)).await;
    add(&store, job("b:latest", Origin::Async)).await;
    // A zero window means no job may be passed over at all: plain FIFO.
    let next = store
        .claim_next(claim(Some("b:latest"), Duration::ZERO))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, old);
}

async fn higher_priority_runs_first_and_drain_by_model_stays_within_a_level(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    add(&store, job("b:latest", Origin::Async)).await;
    let urgent = add(&store, urgent(10, "a:latest", Origin::Async)).await;
    let next = claim_one(&store, Some("b:latest")).await;
    assert_eq!(next.id, urgent, "priority outranks model affinity");
}

async fn jobs_of_a_held_model_wait_while_the_others_run(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let pulling = add(&store, job("new:latest", Origin::Sync)).await;
    let other = add(&store, job("a:latest", Origin::Sync)).await;
    let held = ClaimRequest {
        held: vec!["new:latest".into()],
        ..claim(None, LONG)
    };

    let next = store.claim_next(held.clone()).await.unwrap().unwrap();
    assert_eq!(next.id, other, "the oldest job is passed over while held");
    assert!(store.claim_next(held).await.unwrap().is_none());
    assert_eq!(state(&store, pulling).await, JobState::Queued);

    let released = claim_one(&store, None).await;
    assert_eq!(released.id, pulling, "runs once the hold is lifted");
}

async fn a_full_queue_refuses_new_jobs(backend: Backend) {
    let (_h, store) = backend.open(2).await;
    add(&store, job("a:latest", Origin::Async)).await;
    add(&store, job("a:latest", Origin::Async)).await;
    let err = store
        .enqueue(job("a:latest", Origin::Async))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QueueFull), "{err}");
    // Claiming one frees a place.
    claim_one(&store, None).await;
    add(&store, job("a:latest", Origin::Async)).await;
}

async fn connection_failures_requeue_until_attempts_run_out(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let id = add(&store, job("a:latest", Origin::Async)).await;
    for attempt in 1..=3u32 {
        let claimed = claim_one(&store, None).await;
        assert_eq!(claimed.attempts, attempt);
        let retry = Finish::Retry {
            error: "refused".into(),
            max_attempts: 3,
        };
        let ended = store.finish(id, retry).await.unwrap();
        let expected = if attempt < 3 {
            JobState::Queued
        } else {
            JobState::Failed
        };
        assert_eq!(ended, Some(expected));
    }
    let failed = store.job(id).await.unwrap().unwrap();
    assert_eq!(failed.attempts, 3);
    assert!(failed.error.unwrap().contains("gave up after 3 attempts"));
}

async fn terminal_states_absorb_and_stale_writers_change_nothing(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let id = add(&store, job("a:latest", Origin::Async)).await;
    claim_one(&store, None).await;
    let done = Finish::Done {
        result: Some(b"{}".to_vec()),
        artifacts: Vec::new(),
    };
    assert_eq!(store.finish(id, done).await.unwrap(), Some(JobState::Done));
    // A second writer that still believes the job is running loses.
    let late = Finish::Failed {
        error: "late".into(),
    };
    assert_eq!(store.finish(id, late).await.unwrap(), None);
    assert_eq!(store.cancel(id, "late".into()).await.unwrap(), None);
    assert!(!store.mark_working(id).await.unwrap());
    assert_eq!(state(&store, id).await, JobState::Done);
}

async fn recovery_requeues_async_work_counts_the_attempt_and_cancels_sync_work(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let running = add(&store, job("a:latest", Origin::Async)).await;
    claim_one(&store, None).await;
    let sync_waiting = add(&store, job("a:latest", Origin::Sync)).await;
    let still_queued = add(&store, job("a:latest", Origin::Async)).await;

    let recovered = store.recover(3).await.unwrap();
    assert_eq!(
        recovered,
        Recovered {
            requeued: 1,
            failed: 0,
            cancelled: 1
        }
    );
    let job = store.job(running).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 1));
    assert_eq!(state(&store, sync_waiting).await, JobState::Cancelled);
    assert_eq!(state(&store, still_queued).await, JobState::Queued);
}

async fn a_job_that_crashes_foreman_every_time_ends_failed(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let poison = add(&store, job("a:latest", Origin::Async)).await;
    for _ in 0..3 {
        // Claimed, then the process dies mid-run: only recovery sees it.
        claim_one(&store, None).await;
        store.recover(3).await.unwrap();
    }
    let job = store.job(poison).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts, 3);
}

async fn an_idempotency_key_returns_the_first_job_or_refuses_a_different_body(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let keyed = |hash: &str| NewJob {
        idempotency_key: Some("key-1".into()),
        request_hash: Some(hash.into()),
        ..job("a:latest", Origin::Async)
    };
    let first = store.enqueue(keyed("h1")).await.unwrap();
    assert!(matches!(first, Enqueued::Created(_)));
    let again = store.enqueue(keyed("h1")).await.unwrap();
    assert_eq!(again, Enqueued::Existing(first.id()));
    let err = store.enqueue(keyed("h2")).await.unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyConflict));
}

async fn pruning_deletes_only_finished_jobs_past_the_cutoff(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let finished = add(&store, job("a:latest", Origin::Async)).await;
    claim_one(&store, None).await;
    let artifact = NewArtifact {
        name: "completion".into(),
        content_type: "text/plain".into(),
        data: b"hi".to_vec(),
    };
    let done = Finish::Done {
        result: None,
        artifacts: vec![artifact],
    };
    store.finish(finished, done).await.unwrap();
    let queued = add(&store, job("a:latest", Origin::Async)).await;

    assert_eq!(
        store.prune(now_ms() - 60_000).await.unwrap(),
        0,
        "too young"
    );
    assert_eq!(store.prune(now_ms() + 1).await.unwrap(), 1);
    assert!(store.job(finished).await.unwrap().is_none());
    assert!(store
        .artifact(finished, "completion".into())
        .await
        .unwrap()
        .is_none());
    assert_eq!(state(&store, queued).await, JobState::Queued);
}

async fn webhook_events_are_written_with_each_state_change_and_delivered_in_order(
    backend: Backend,
) {
    let (_h, store) = backend.open(100).await;
    let id = add(
        &store,
        NewJob {
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..job("a:latest", Origin::Async)
        },
    )
    .await;
    claim_one(&store, None).await;
    store.mark_working(id).await.unwrap();

    // Only the oldest pending event of a job is due: state order per job.
    let due = store.due_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&due[0].body).unwrap();
    assert_eq!(body["state"], "queued");
    assert_eq!(body["type"], "job.queued");

    let failed = DeliveryOutcome {
        status: Some(500),
        latency: Duration::ZERO,
        error: Some("500".into()),
    };
    store
        .record_delivery(&due[0], failed, 5, Duration::ZERO)
        .await
        .unwrap();
    let retry = store.due_deliveries(10).await.unwrap();
    assert_eq!(
        retry[0].webhook_id, due[0].webhook_id,
        "a retry keeps its webhook-id"
    );
    assert_eq!(retry[0].attempts, 1);

    let ok = DeliveryOutcome {
        status: Some(204),
        latency: Duration::ZERO,
        error: None,
    };
    store
        .record_delivery(&retry[0], ok, 5, Duration::ZERO)
        .await
        .unwrap();
    let next = store.due_deliveries(10).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&next[0].body).unwrap();
    assert_eq!(body["state"], "loading");

    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.webhook_attempts.len(), 2);
    assert_eq!(job.webhook_attempts[0].status, Some(500));
    assert_eq!(job.webhook_attempts[1].status, Some(204));
}

async fn concurrent_enqueues_are_all_committed_and_listed_newest_first(backend: Backend) {
    let (_h, store) = backend.open(10_000).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let store = store.clone();
        tasks.spawn(async move { add(&store, job("a:latest", Origin::Async)).await });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    let listed = store
        .list(JobFilter {
            limit: 500,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 200);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let snapshot = store.queue_snapshot().await.unwrap();
    assert_eq!(snapshot.depth_by_model, vec![("a:latest".to_owned(), 200)]);
}

async fn queue_position_counts_the_jobs_ahead(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let first = add(&store, job("a:latest", Origin::Async)).await;
    let second = add(&store, job("a:latest", Origin::Async)).await;
    let urgent = add(&store, urgent(5, "a:latest", Origin::Async)).await;
    let position = |id| {
        let store = store.clone();
        async move { store.job(id).await.unwrap().unwrap().queue_position }
    };
    assert_eq!(position(urgent).await, Some(0));
    assert_eq!(position(first).await, Some(1));
    assert_eq!(position(second).await, Some(2));
}

async fn the_samples_saved_last_are_the_ones_loaded(backend: Backend) {
    let (_h, store) = backend.open(10).await;
    assert_eq!(store.load_ui_samples().await.unwrap(), None);

    store.save_ui_samples("[1]".into()).await.unwrap();
    store.save_ui_samples("[1,2]".into()).await.unwrap();

    assert_eq!(
        store.load_ui_samples().await.unwrap().as_deref(),
        Some("[1,2]")
    );
}

/// A claim on one target that runs one generation at a time.
fn one_slot() -> ClaimRequest {
    let mut request = claim(None, LONG);
    request.targets[0].parallel = 1;
    request
}

async fn every_end_of_a_run_frees_the_targets_slot(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let endings: Vec<Box<dyn Fn() -> Finish>> = vec![
        Box::new(|| Finish::Done {
            result: None,
            artifacts: Vec::new(),
        }),
        Box::new(|| Finish::Failed { error: "x".into() }),
        Box::new(|| Finish::Retry {
            error: "unreachable".into(),
            max_attempts: 5,
        }),
        Box::new(|| Finish::Interrupted),
        Box::new(|| Finish::Cancelled {
            reason: "gone".into(),
        }),
    ];
    for ending in endings {
        let id = add(&store, job("a:latest", Origin::Async)).await;
        let claimed = store.claim_next(one_slot()).await.unwrap().unwrap();
        assert_eq!(claimed.id, id);
        store
            .finish(id, ending())
            .await
            .unwrap()
            .expect("the run ends");
        if state(&store, id).await == JobState::Queued {
            store.cancel(id, "done with it".into()).await.unwrap();
        }
    }
    // A cancelled run: its worker stops it and says so, finding the job ended already.
    let id = add(&store, job("a:latest", Origin::Async)).await;
    store.claim_next(one_slot()).await.unwrap().unwrap();
    assert_eq!(
        store.cancel(id, "stop".into()).await.unwrap(),
        Some(JobState::Loading)
    );
    let stopped = Finish::Cancelled {
        reason: "cancelled".into(),
    };
    assert_eq!(store.finish(id, stopped).await.unwrap(), None);
    let next = add(&store, job("a:latest", Origin::Async)).await;
    let claimed = store.claim_next(one_slot()).await.unwrap();
    assert_eq!(
        claimed.map(|c| c.id),
        Some(next),
        "a cancelled run frees its slot"
    );
}

async fn keep_alive_leaves_the_replicas_own_work_alone(backend: Backend) {
    let (h, store) = backend.open(100).await;
    let running = add(&store, job("a:latest", Origin::Async)).await;
    claim_one(&store, None).await;
    let waiting = add(&store, job("a:latest", Origin::Sync)).await;
    assert_eq!(
        store.keep_alive(3, Vec::new()).await.unwrap(),
        Recovered::default()
    );
    assert_eq!(state(&store, running).await, JobState::Loading);
    assert_eq!(state(&store, waiting).await, JobState::Queued);
    assert_counts_agree(&h).await;
}

async fn concurrent_submissions_with_one_idempotency_key_make_one_job(backend: Backend) {
    let (h, store) = backend.open(100).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let keyed = NewJob {
                idempotency_key: Some("once".into()),
                request_hash: Some("h".into()),
                ..job("a:latest", Origin::Async)
            };
            store.enqueue(keyed).await.unwrap()
        });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.unwrap());
    }
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Enqueued::Created(_)))
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o.id() == outcomes[0].id()));
    let jobs = h.numbers("SELECT count(*) FROM jobs".to_owned()).await[0];
    assert_eq!(jobs, 1.0);
    assert_counts_agree(&h).await;
}

/// `GET /queue`'s depth per model is summed over the queue's groups: one model's jobs at
/// two priorities and from two tenants are one figure, which follows claims, cancels and
/// jobs going back to the queue.
async fn the_depth_per_model_sums_every_group_and_follows_each_change(backend: Backend) {
    let (h, store) = backend.open(100).await;
    let depth = |store: Store| async move { store.queue_snapshot().await.unwrap().depth_by_model };
    let of_tenant = |key: &str, priority: i32| NewJob {
        tenant: crate::scheduler::Tenant::new(key, ""),
        ..urgent(priority, "a:latest", Origin::Async)
    };
    add(&store, of_tenant("one", 0)).await;
    add(&store, of_tenant("one", 5)).await;
    add(&store, of_tenant("two", 0)).await;
    let b = add(&store, job("b:latest", Origin::Async)).await;
    assert_eq!(
        depth(store.clone()).await,
        vec![("a:latest".to_owned(), 3), ("b:latest".to_owned(), 1)],
        "most first"
    );

    let running = claim_one(&store, Some("a:latest")).await;
    store.cancel(b, "changed my mind".into()).await.unwrap();
    assert_eq!(depth(store.clone()).await, vec![("a:latest".to_owned(), 2)]);

    let again = Finish::Retry {
        error: "connection refused".into(),
        max_attempts: 3,
    };
    store.finish(running.id, again).await.unwrap();
    assert_eq!(depth(store.clone()).await, vec![("a:latest".to_owned(), 3)]);
    for _ in 0..3 {
        claim_one(&store, None).await;
    }
    assert_eq!(depth(store.clone()).await, Vec::new());
    assert_counts_agree(&h).await;
}

super::harness::on_both_backends!(
    the_depth_per_model_sums_every_group_and_follows_each_change,
    the_samples_saved_last_are_the_ones_loaded,
    every_end_of_a_run_frees_the_targets_slot,
    keep_alive_leaves_the_replicas_own_work_alone,
    concurrent_submissions_with_one_idempotency_key_make_one_job,
    next_job_prefers_the_resident_model_then_the_oldest,
    the_oldest_job_stops_being_passed_over_once_the_window_is_spent,
    higher_priority_runs_first_and_drain_by_model_stays_within_a_level,
    jobs_of_a_held_model_wait_while_the_others_run,
    a_full_queue_refuses_new_jobs,
    connection_failures_requeue_until_attempts_run_out,
    terminal_states_absorb_and_stale_writers_change_nothing,
    recovery_requeues_async_work_counts_the_attempt_and_cancels_sync_work,
    a_job_that_crashes_foreman_every_time_ends_failed,
    an_idempotency_key_returns_the_first_job_or_refuses_a_different_body,
    pruning_deletes_only_finished_jobs_past_the_cutoff,
    webhook_events_are_written_with_each_state_change_and_delivered_in_order,
    concurrent_enqueues_are_all_committed_and_listed_newest_first,
    queue_position_counts_the_jobs_ahead,
);
